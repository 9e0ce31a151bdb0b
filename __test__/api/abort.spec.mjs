// Per-call options: an AbortSignal and a timeout.

import { getEventListeners } from 'node:events'
import { describe, expect, it } from 'vitest'

import { AbortError, BlenderPoolError } from '../../index.mjs'
import { mockBlender, poolFor, rejection, until } from '../helpers.mjs'

describe('AbortSignal', () => {
  it('an already-aborted signal rejects at once, sending nothing and opening nothing', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const reason = new Error('user cancelled')
    const err = await rejection(pool.execute('echo', { n: 1 }, { signal: AbortSignal.abort(reason) }))
    expect(err).toBeInstanceOf(AbortError)
    expect(err).toBeInstanceOf(BlenderPoolError)
    expect(err.name).toBe('AbortError')
    expect(err.code).toBe('ABORT_ERR')
    expect(err.cause).toBe(reason)
    expect(pool.getStats()).toMatchObject({ totalConnections: 0, openingConnections: 0 })
    expect(mock.connectionsOpened).toBe(0)
  })

  it('aborting a waiting call takes it out of the queue; it is never sent', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1 })
    const held = await pool.acquire()
    const controller = new AbortController()
    const waiting = pool.execute('echo', { never: true }, { signal: controller.signal })
    const behind = pool.execute('echo', { behind: true })
    expect(pool.getStats().pendingRequests).toBe(2)
    controller.abort()
    expect((await rejection(waiting)).code).toBe('ABORT_ERR')
    expect(pool.getStats().pendingRequests).toBe(1)
    await held.release()
    await expect(behind).resolves.toMatchObject({ result: { behind: true } })
    expect(mock.requestLog.map((r) => r.params)).toEqual([{ behind: true }])
  })

  it('aborting a call in flight discards its connection', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const controller = new AbortController()
    const call = pool.execute('sleep', { ms: 200 }, { signal: controller.signal })
    await mock.waitFor((m) => m.requests === 1)
    controller.abort()
    expect((await rejection(call)).code).toBe('ABORT_ERR')
    await mock.waitFor((m) => m.openConnections === 0)
    await expect(pool.execute('echo', { next: 1 })).resolves.toMatchObject({ result: { next: 1 } })
    expect(mock.connectionsOpened).toBe(2)
  })

  it('aborting an acquire while it waits', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1 })
    const held = await pool.acquire()
    const controller = new AbortController()
    const second = pool.acquire({ signal: controller.signal })
    controller.abort()
    expect((await rejection(second)).code).toBe('ABORT_ERR')
    expect(pool.getStats().pendingRequests).toBe(0)
    await held.release()
  })

  it('aborting a command on a lease discards the leased connection', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const conn = await pool.acquire()
    const controller = new AbortController()
    const call = conn.execute('sleep', { ms: 200 }, { signal: controller.signal })
    await mock.waitFor((m) => m.requests === 1)
    controller.abort()
    expect((await rejection(call)).code).toBe('ABORT_ERR')
    expect((await rejection(conn.execute('echo'))).code).toBe('ERR_CONNECTION_CLOSED')
    await conn.release()
    await mock.waitFor((m) => m.openConnections === 0)
  })

  it('an abort after the reply changes nothing, and no listener is left on the signal', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const controller = new AbortController()
    for (let i = 0; i < 50; i++) await pool.execute('echo', { i }, { signal: controller.signal })
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
    controller.abort()
    await expect(pool.execute('echo', { after: 1 })).resolves.toMatchObject({ status: 'success' })
    expect(mock.connectionsOpened).toBe(1)
  })

  it('rejects a signal that is not an AbortSignal', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const err = await rejection(pool.execute('echo', {}, { signal: { aborted: false } }))
    expect(err).toBeInstanceOf(TypeError)
    expect(mock.connectionsOpened).toBe(0)
  })
})

describe('per-call timeout', () => {
  it('in flight: ERR_RESPONSE_TIMEOUT after the call timeout, well before socketTimeout', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { socketTimeout: 60_000 })
    const started = Date.now()
    const err = await rejection(pool.execute('sleep', { ms: 2000 }, { timeout: 150 }))
    const elapsed = Date.now() - started
    expect(err.code).toBe('ERR_RESPONSE_TIMEOUT')
    expect(elapsed).toBeGreaterThanOrEqual(145)
    expect(elapsed).toBeLessThan(1500)
    await mock.waitFor((m) => m.openConnections === 0)
  })

  it('while waiting for a connection: ERR_POOL_TIMEOUT, nothing sent', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1 })
    const held = await pool.acquire()
    const err = await rejection(pool.execute('echo', { late: true }, { timeout: 100 }))
    expect(err.code).toBe('ERR_POOL_TIMEOUT')
    await held.release()
    expect(mock.requests).toBe(0)
  })

  it('a call finishing within its timeout keeps its connection', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    await expect(pool.execute('sleep', { ms: 20 }, { timeout: 2000 })).resolves.toMatchObject({ status: 'success' })
    await pool.execute('echo')
    expect(mock.connectionsOpened).toBe(1)
  })

  it.each([0, -1, Number.NaN, Infinity])('timeout %s is a RangeError', async (timeout) => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const err = await rejection(pool.execute('echo', {}, { timeout }))
    expect(err).toBeInstanceOf(RangeError)
    expect(err.code).toBe('ERR_OUT_OF_RANGE')
  })
})

describe('robustness', () => {
  it('a panic on the I/O thread fails that call with ERR_INTERNAL; the pool carries on', async () => {
    const native = (await import('../../binding.js')).default
    const mock = await mockBlender()
    const pool = poolFor(mock)
    await pool.execute('echo')
    native.__setFailpoint('panic-on-reply', true)
    let err
    try {
      err = await rejection(pool.execute('echo', { boom: true }))
    } finally {
      native.__setFailpoint('panic-on-reply', false)
    }
    expect(err.code).toBe('ERR_INTERNAL')
    await expect(pool.execute('echo', { after: 'panic' })).resolves.toMatchObject({ result: { after: 'panic' } })
    await until(() => pool.getStats().totalConnections === 1)
  })

  it('a panic on the JS thread rejects with ERR_INTERNAL instead of aborting the process', async () => {
    const native = (await import('../../binding.js')).default
    const mock = await mockBlender()
    const pool = poolFor(mock)
    native.__setFailpoint('panic-on-submit', true)
    let err
    try {
      err = await rejection(pool.execute('echo'))
    } finally {
      native.__setFailpoint('panic-on-submit', false)
    }
    expect(err.code).toBe('ERR_INTERNAL')
    await expect(pool.execute('echo', { fine: 1 })).resolves.toMatchObject({ result: { fine: 1 } })
  })
})
