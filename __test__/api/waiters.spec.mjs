// Waiters are served first-in first-out, and maxConnections is a hard cap as the server counts.
import { describe, expect, it } from 'vitest'

import { mockBlender, poolFor, until } from '../helpers.mjs'

describe('waiting for a connection', () => {
  it('serves waiters in the order they asked', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1 })
    const held = await pool.acquire()
    const calls = Array.from({ length: 10 }, (_, i) => pool.execute('echo', { i }))
    expect(pool.getStats().pendingRequests).toBe(10)
    await held.release()
    const replies = await Promise.all(calls)
    expect(replies.map((r) => r.result.i)).toEqual([...Array(10).keys()])
    expect(mock.requestLog.map((r) => r.params.i)).toEqual([...Array(10).keys()])
    expect(pool.getStats().pendingRequests).toBe(0)
  })

  it('never has more than maxConnections sockets open, as the server counts them', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 3 })
    const calls = Array.from({ length: 30 }, (_, i) => pool.execute('sleep', { ms: 2, i }))
    const replies = await Promise.all(calls)
    expect(replies.every((r) => r.status === 'success')).toBe(true)
    expect(mock.maxOpenConnections).toBe(3)
    expect(mock.connectionsOpened).toBe(3)
    expect(pool.getStats()).toMatchObject({ totalConnections: 3, idleConnections: 3, totalRequests: 30 })
  })

  it('acquire waits in the same queue as execute', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1 })
    const first = await pool.acquire()
    const order = []
    const a = pool.execute('echo', { who: 'a' }).then(() => order.push('a'))
    const b = pool.acquire().then((conn) => {
      order.push('b')
      return conn.release()
    })
    const c = pool.execute('echo', { who: 'c' }).then(() => order.push('c'))
    await until(() => pool.getStats().pendingRequests === 3)
    await first.release()
    await Promise.all([a, b, c])
    expect(order).toEqual(['a', 'b', 'c'])
    expect(mock.connectionsOpened).toBe(1)
  })

  // All of them give up in one round of the I/O thread, which holds its settlements until it
  // parks (at most 64 at a time): more than that must still all arrive, each once, in order.
  it('delivers 150 settlements made in one I/O round, in queue order', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1, connectionTimeout: 300 })
    const held = await pool.acquire()
    const order = []
    const calls = Array.from({ length: 150 }, (_, i) =>
      pool.execute('echo', { i }).then(
        () => order.push(`ok ${i}`),
        (err) => order.push(`${err.code} ${i}`),
      ),
    )
    await Promise.all(calls)
    expect(order).toEqual(Array.from({ length: 150 }, (_, i) => `ERR_POOL_TIMEOUT ${i}`))
    expect(mock.requestLog).toHaveLength(0)
    expect(pool.getStats().pendingRequests).toBe(0)
    await held.release()
    expect((await pool.execute('echo', { after: true })).result).toEqual({ after: true })
  })
})
