// Connections open in the background, age out, retire, and vanish when Blender closes them.
import { describe, expect, it } from 'vitest'

import { deadEndpoint, mockBlender, poolFor, until } from '../helpers.mjs'

describe('connection lifecycle', () => {
  it('opens minConnections in the background, with no call made', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { minConnections: 2 })
    await mock.waitFor((m) => m.openConnections === 2)
    await until(() => pool.getStats().totalConnections === 2)
    expect(pool.getStats()).toMatchObject({ idleConnections: 2, activeConnections: 0, totalRequests: 0 })
    expect(mock.requests).toBe(0)
  })

  it('constructs fine while Blender is down, and backs off its top-up attempts', async () => {
    const dead = await deadEndpoint()
    const pool = poolFor(dead, { minConnections: 1, healthCheckInterval: 20 })
    await until(() => pool.getStats().connectFailures >= 3)
    // Attempts back off (100 ms, 200 ms, ...): far fewer than one per 20 ms interval.
    const started = Date.now()
    await until(() => pool.getStats().connectFailures >= 4, 10_000)
    expect(Date.now() - started).toBeGreaterThanOrEqual(300)
    expect(pool.getStats().totalConnections).toBe(0)
  })

  it('closes idle connections above minConnections after idleTimeout', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { minConnections: 1, idleTimeout: 100 })
    await Promise.all(Array.from({ length: 3 }, () => pool.execute('sleep', { ms: 5 })))
    expect(mock.connectionsOpened).toBe(3)
    await mock.waitFor((m) => m.openConnections === 1)
    await until(() => pool.getStats().totalConnections === 1)
  })

  it('retires a connection after maxRequestsPerConnection', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxRequestsPerConnection: 3 })
    for (let i = 0; i < 7; i++) await pool.execute('echo', { i })
    expect(mock.requestLog.map((r) => r.connectionId)).toEqual([1, 1, 1, 2, 2, 2, 3])
    await mock.waitFor((m) => m.openConnections === 1)
  })

  it('drops connections Blender closed while idle, before anyone is handed one', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 2 })
    await Promise.all([pool.execute('sleep', { ms: 5 }), pool.execute('sleep', { ms: 5 })])
    expect(pool.getStats().totalConnections).toBe(2)
    await mock.closeAllConnections() // Blender restarted
    await until(() => pool.getStats().totalConnections === 0)
    await expect(pool.execute('echo', { after: 'restart' })).resolves.toEqual({
      status: 'success',
      result: { after: 'restart' },
    })
    expect(pool.getStats()).toMatchObject({ totalConnections: 1, failedRequests: 0 })
  })
})

describe('getStats', () => {
  it('counts active, idle, pending and completed requests truthfully', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1 })
    expect(pool.getStats()).toEqual({
      totalConnections: 0,
      activeConnections: 0,
      idleConnections: 0,
      pendingRequests: 0,
      totalRequests: 0,
      openingConnections: 0,
      openSockets: 0,
      failedRequests: 0,
      connectionsOpened: 0,
      connectFailures: 0,
    })
    const slow = pool.execute('sleep', { ms: 100 })
    const queued = pool.execute('echo')
    await mock.waitFor((m) => m.requests === 1)
    await until(() => pool.getStats().activeConnections === 1)
    expect(pool.getStats()).toMatchObject({
      totalConnections: 1,
      activeConnections: 1,
      idleConnections: 0,
      pendingRequests: 1,
      totalRequests: 0,
    })
    await Promise.all([slow, queued])
    expect(pool.getStats()).toMatchObject({
      totalConnections: 1,
      activeConnections: 0,
      idleConnections: 1,
      pendingRequests: 0,
      totalRequests: 2,
    })
  })

  it('counts status:error replies as completed requests and pool failures as failed', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    await pool.execute('fail', { message: 'no' })
    mock.setFault('garbage')
    await pool.execute('echo').catch(() => {})
    expect(pool.getStats()).toMatchObject({ totalRequests: 1, failedRequests: 1 })
  })
})
