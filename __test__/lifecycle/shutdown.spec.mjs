import { describe, expect, it } from 'vitest'

import { mockBlender, poolFor, rejection } from '../helpers.mjs'

describe('shutdown', () => {
  it('rejects waiters at once, lets the request in flight finish, then closes every socket', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1 })
    const inFlight = pool.execute('sleep', { ms: 150 })
    const waiting = pool.execute('echo', { never: 'sent' })
    await mock.waitFor((m) => m.requests === 1)
    const closing = pool.shutdown()
    const err = await rejection(waiting)
    expect(err.code).toBe('ERR_POOL_SHUTDOWN')
    expect(err.message).toBe('Connection pool shutting down')
    await expect(inFlight).resolves.toEqual({ status: 'success', result: { slept: 150 } })
    await closing
    expect(pool.getStats()).toMatchObject({ totalConnections: 0, activeConnections: 0, pendingRequests: 0 })
    await mock.waitFor((m) => m.openConnections === 0)
    expect(mock.requestLog.map((r) => r.type)).toEqual(['sleep'])
  })

  it('afterwards rejects execute and acquire at once and opens nothing', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    await pool.execute('echo')
    await pool.shutdown()
    for (const call of [pool.execute('echo'), pool.acquire(), pool.executeRaw('echo')]) {
      expect((await rejection(call)).code).toBe('ERR_POOL_SHUTDOWN')
    }
    await mock.waitFor((m) => m.openConnections === 0)
    expect(mock.connectionsOpened).toBe(1)
    expect(mock.requests).toBe(1)
  })

  it('is idempotent', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { minConnections: 2 })
    await mock.waitFor((m) => m.openConnections === 2)
    await Promise.all([pool.shutdown(), pool.shutdown()])
    await pool.shutdown()
    await mock.waitFor((m) => m.openConnections === 0)
  })

  it('closes a leased connection that is not running a command', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const conn = await pool.acquire()
    await pool.shutdown()
    await mock.waitFor((m) => m.openConnections === 0)
    expect((await rejection(conn.execute('echo'))).code).toBe('ERR_POOL_SHUTDOWN')
    expect(conn.inUse).toBe(false)
  })
})
