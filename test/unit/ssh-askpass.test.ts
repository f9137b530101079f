import {existsSync, statSync} from 'node:fs'

import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

import {askpassPrompt, AskpassBridge} from '../../src/ssh/askpass.js'
import type {Interaction, Prompt} from '../../src/ssh/transport.js'

describe('askpassPrompt', () => {
  it('splits ssh questions into explanation and prompt, with echo for yes/no', () => {
    expect(askpassPrompt('(hpcuser@127.0.0.1) Verification code: ')).toEqual({prompt: {prompt: '(hpcuser@127.0.0.1) Verification code: ', echo: false}, instructions: ''})
    const hostKey = askpassPrompt(
      "The authenticity of host '[127.0.0.1]:2222' can't be established.\nED25519 key fingerprint is SHA256:abc.\nAre you sure you want to continue connecting (yes/no/[fingerprint])? ",
    )
    expect(hostKey.prompt).toEqual({prompt: 'Are you sure you want to continue connecting (yes/no/[fingerprint])? ', echo: true})
    expect(hostKey.instructions).toContain('SHA256:abc')
    expect(askpassPrompt('Allow use of key?', 'confirm').prompt.echo).toBe(true)
  })
})

describe('AskpassBridge', () => {
  it('answers through its socket (0600 in a 0700 directory), one question at a time', async () => {
    const asked: Prompt[] = []
    const interaction: Interaction = {
      answer: async (prompts) => {
        asked.push(...prompts)
        return prompts.map((p) => (p.prompt.includes('code') ? '123456' : 'sec ret\'"$x'))
      },
    }
    const bridge = await AskpassBridge.start(interaction)
    try {
      expect(statSync(bridge.dir).mode & 0o777).toBe(0o700)
      expect(statSync(bridge.socketPath).mode & 0o777).toBe(0o600)
      const [a, b] = await Promise.all([execa(bridge.script, ['Verification code: ']), execa(bridge.script, ['Password: '])])
      expect(a.stdout).toBe('123456')
      expect(b.stdout).toBe('sec ret\'"$x')
      expect(asked.map((p) => p.prompt).sort()).toEqual(['Password: ', 'Verification code: '])
      expect(bridge.asked).toBe(2)
      // The answer is in no environment and on no command line.
      expect(JSON.stringify(bridge.env())).not.toContain('123456')
    } finally {
      await bridge.close()
    }
    expect(existsSync(bridge.dir)).toBe(false)
  })

  it('fails the helper (exit 1) when the question cannot be answered, keeping the reason', async () => {
    const refusal = new Error('no terminal')
    const bridge = await AskpassBridge.start({answer: async () => Promise.reject(refusal)})
    try {
      const result = await execa(bridge.script, ['Verification code: '], {reject: false})
      expect(result.exitCode).toBe(1)
      expect(result.stdout).toBe('')
      expect(bridge.failure).toBe(refusal)
    } finally {
      await bridge.close()
    }
  })
})
