import {describe, expect, it} from 'vitest'

import {SessionPool, withSession} from '../../src/ssh/pool.js'

const tick = () => new Promise((resolve) => setTimeout(resolve, 1))

describe('SessionPool', () => {
  it('never holds more than the cap, and serves waiters in order', async () => {
    const pool = new SessionPool(2)
    let running = 0
    let peak = 0
    const order: number[] = []
    await Promise.all(
      Array.from({length: 7}, (_, i) =>
        withSession(pool, undefined, async () => {
          running++
          peak = Math.max(peak, running)
          order.push(i)
          await tick()
          running--
          return {refused: false as const, value: i}
        }),
      ),
    )
    expect(peak).toBe(2)
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6])
  })

  it('learns a limit of 1 from refusals and still runs everything', async () => {
    // A fake server that allows one session at a time.
    const pool = new SessionPool(10)
    let open = 0
    let refusals = 0
    const results = await Promise.all(
      Array.from({length: 25}, (_, i) =>
        withSession(pool, undefined, async (opened) => {
          await tick()
          if (open >= 1) {
            refusals++
            return {refused: true as const, error: new Error('refused')}
          }
          open++
          opened()
          await tick()
          open--
          return {refused: false as const, value: i}
        }),
      ),
    )
    expect(results).toEqual(Array.from({length: 25}, (_, i) => i))
    expect(pool.cap).toBe(1)
    expect(refusals).toBeGreaterThan(0)
    expect(refusals).toBeLessThan(30)
  })

  it('does not go below what has worked when a refusal is transient', async () => {
    const pool = new SessionPool(3)
    for (let i = 0; i < 3; i++) await pool.acquire()
    for (let i = 0; i < 3; i++) pool.opened()
    pool.release(true)
    pool.release(true)
    expect(pool.refused()).toBe(0)
    expect(pool.cap).toBe(3)
  })

  it('without open reports, lowers the cap to what else is held', async () => {
    const pool = new SessionPool(10)
    for (let i = 0; i < 4; i++) await pool.acquire()
    expect(pool.refused()).toBe(3)
    expect(pool.cap).toBe(3)
  })

  it('grows back after many sessions without a refusal', async () => {
    const pool = new SessionPool(4)
    for (let i = 0; i < 3; i++) await pool.acquire()
    pool.refused()
    expect(pool.cap).toBe(2)
    for (let i = 0; i < SessionPool.GROW_AFTER; i++) pool.succeeded()
    expect(pool.cap).toBe(3)
  })

  it('gives up on work refused again and again with nothing else open', async () => {
    const pool = new SessionPool(2)
    await expect(withSession(pool, undefined, async () => ({refused: true as const, error: new Error('prohibited')}))).rejects.toThrow('prohibited')
  }, 20_000)

  it('an abort takes a waiter out of the queue', async () => {
    const pool = new SessionPool(1)
    await pool.acquire()
    const controller = new AbortController()
    const waiting = pool.acquire(controller.signal)
    expect(pool.waiting).toBe(1)
    controller.abort(new Error('stop'))
    await expect(waiting).rejects.toThrow('stop')
    expect(pool.waiting).toBe(0)
  })

  it('fail() rejects every waiter and every later acquire', async () => {
    const pool = new SessionPool(1)
    await pool.acquire()
    const waiting = pool.acquire()
    pool.fail(new Error('lost'))
    await expect(waiting).rejects.toThrow('lost')
    await expect(pool.acquire()).rejects.toThrow('lost')
  })
})
