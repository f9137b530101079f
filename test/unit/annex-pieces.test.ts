import {afterEach, describe, expect, it, vi} from 'vitest'

import {CleanupStack, describeCleanup} from '../../src/annex/cleanup.js'
import {BackendOutputParser, CoalescingWriter} from '../../src/backend/protocol.js'
import {StallWatchdog} from '../../src/backend/stall.js'
import {AnnexError} from '../../src/errors.js'

describe('BackendOutputParser', () => {
  it('separates control lines, progress updates and output, across chunk boundaries', () => {
    const parser = new BackendOutputParser()
    const stream = '\rStep 1 of 8: making the pilot directory...\rStep 2 of 8: unpack' +
      'ing HTCondor...\nsome output\n=-.-= PID 4242\n=-.-= PILOT_DIR /scratch/u/pilot.x1\n=-.-= JOB_ID 17\nlast words'
    const events = []
    for (let i = 0; i < stream.length; i += 7) events.push(...parser.push(stream.slice(i, i + 7)))
    events.push(...parser.end())
    expect(events).toEqual([
      {kind: 'progress', text: 'Step 1 of 8: making the pilot directory...'},
      {kind: 'progress', text: 'Step 2 of 8: unpacking HTCondor...'},
      {kind: 'output', line: 'some output'},
      {kind: 'control', attribute: 'PID', value: '4242'},
      {kind: 'control', attribute: 'PILOT_DIR', value: '/scratch/u/pilot.x1'},
      {kind: 'control', attribute: 'JOB_ID', value: '17'},
      {kind: 'output', line: 'last words'},
    ])
  })

  it('does not take a look-alike for a control line', () => {
    const parser = new BackendOutputParser()
    expect([...parser.push('x =-.-= PID 1\n=-.-=PID 2\n=-.-= 1BAD v\n'), ...parser.end()].map((e) => e.kind)).toEqual(['output', 'output', 'output'])
  })
})

describe('CoalescingWriter', () => {
  it('writes one batch at a time; what arrives during a write goes in the next, the latest value winning', async () => {
    const writes: Record<string, string>[] = []
    const gates: (() => void)[] = []
    const writer = new CoalescingWriter<'PID' | 'PILOT_DIR' | 'JOB_ID'>(async (values) => {
      writes.push(values)
      await new Promise<void>((resolve) => gates.push(resolve))
    })
    writer.set('PID', '1')
    writer.set('PILOT_DIR', '/a')
    writer.set('PILOT_DIR', '/b')
    writer.set('JOB_ID', '7')
    expect(writes).toEqual([{PID: '1'}])
    gates.shift()!()
    await vi.waitFor(() => expect(writes).toHaveLength(2))
    expect(writes[1]).toEqual({PILOT_DIR: '/b', JOB_ID: '7'})
    let flushed = false
    const flushing = writer.flush().then(() => (flushed = true))
    await new Promise((r) => setTimeout(r, 10))
    expect(flushed).toBe(false)
    gates.shift()!()
    await flushing
    // Idle again: the next value is written at once, on its own.
    writer.set('JOB_ID', '8')
    expect(writes[2]).toEqual({JOB_ID: '8'})
    gates.shift()!()
    await writer.flush()
    expect(writer.error).toBeUndefined()
  })

  it('keeps the first failure and still writes what comes after it', async () => {
    const writes: Record<string, string>[] = []
    const writer = new CoalescingWriter<'A' | 'B'>(async (values) => {
      writes.push(values)
      if (values.A) throw new Error('qedit refused')
    })
    writer.set('A', 'x')
    writer.set('B', 'y')
    await writer.flush()
    expect(writes).toEqual([{A: 'x'}, {B: 'y'}])
    expect((writer.error as Error).message).toBe('qedit refused')
  })
})

describe('StallWatchdog', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('aborts after a stall, never while progress continues', () => {
    vi.useFakeTimers()
    const dog = new StallWatchdog('uploading the bundle', 1000)
    for (let i = 0; i < 50; i++) {
      vi.advanceTimersByTime(900)
      dog.progress()
    }
    expect(dog.signal.aborted).toBe(false)
    vi.advanceTimersByTime(1001)
    expect(dog.signal.aborted).toBe(true)
    expect(dog.signal.reason).toBeInstanceOf(AnnexError)
    expect((dog.signal.reason as AnnexError).message).toBe('uploading the bundle made no progress for 1 seconds; giving up.')
    expect((dog.signal.reason as AnnexError).exitCode).toBe(2)
  })

  it('stops cleanly', () => {
    vi.useFakeTimers()
    const dog = new StallWatchdog('x', 10)
    dog.stop()
    vi.advanceTimersByTime(100)
    expect(dog.signal.aborted).toBe(false)
  })
})

describe('CleanupStack', () => {
  it('undoes newest first, reports failures, runs once however often asked', async () => {
    const stack = new CleanupStack()
    const order: string[] = []
    stack.register('deleted the local token', async () => void order.push('token'))
    stack.register('removed the state job 12.0', async () => {
      order.push('state job')
      throw new Error('condor_rm failed:\nschedd down')
    })
    const forget = stack.register('cancelled the batch job', async () => void order.push('batch'))
    forget()
    const [a, b] = await Promise.all([stack.unwind(), stack.unwind()])
    expect(a).toBe(b)
    expect(order).toEqual(['state job', 'token'])
    expect(describeCleanup(a)).toBe('undone: deleted the local token; NOT undone: removed the state job 12.0 (condor_rm failed: schedd down)')
  })

  it('does nothing once dismissed', async () => {
    const stack = new CleanupStack()
    let ran = false
    stack.register('x', async () => void (ran = true))
    stack.dismiss()
    expect((await stack.unwind()).undone).toEqual([])
    expect(ran).toBe(false)
  })
})
