// acquire()/release(): a lease on one connection, never exposing the socket.
import { describe, expect, it } from 'vitest'

import { ConnectionPool, PooledConnection } from '../../index.mjs'
import { mockBlender, poolFor, rejection } from '../helpers.mjs'

describe('leases', () => {
  it('runs several commands on one connection and reports its details', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const before = Date.now()
    const conn = await pool.acquire()
    expect(conn).toBeInstanceOf(PooledConnection)
    expect(conn.id).toMatch(/^conn-\d+$/)
    expect(conn.inUse).toBe(true)
    expect(conn.requestCount).toBe(0)
    expect(conn.createdAt).toBeGreaterThanOrEqual(before - 1)
    expect(conn.socket).toBeUndefined()
    for (let i = 0; i < 3; i++) expect((await conn.execute('echo', { i })).result).toEqual({ i })
    expect(conn.requestCount).toBe(3)
    expect(conn.lastUsedAt).toBeGreaterThanOrEqual(conn.createdAt)
    expect(new Set(mock.requestLog.map((r) => r.connectionId)).size).toBe(1)
    expect(pool.getStats()).toMatchObject({ activeConnections: 1, idleConnections: 0 })
    await pool.release(conn)
    expect(conn.inUse).toBe(false)
    expect(pool.getStats()).toMatchObject({ activeConnections: 0, idleConnections: 1 })
  })

  it('refuses a second command while one runs (no pipelining)', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const conn = await pool.acquire()
    const first = conn.execute('sleep', { ms: 50 })
    const err = await rejection(conn.execute('echo'))
    expect(err.code).toBe('ERR_CONNECTION_BUSY')
    await expect(first).resolves.toMatchObject({ status: 'success' })
    expect(mock.requests).toBe(1)
    await conn.release()
  })

  it('rejects use after release, and release is idempotent', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const conn = await pool.acquire()
    await pool.release(conn)
    await pool.release(conn)
    await conn.release()
    const err = await rejection(conn.execute('echo'))
    expect(err.code).toBe('ERR_CONNECTION_RELEASED')
    expect(mock.requests).toBe(0)
  })

  it('a released connection goes to the next waiter', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1 })
    const conn = await pool.acquire()
    const waiting = pool.execute('echo', { next: 1 })
    await conn.release()
    await expect(waiting).resolves.toEqual({ status: 'success', result: { next: 1 } })
    expect(mock.connectionsOpened).toBe(1)
  })

  it('release while a command runs returns the connection once it finishes', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1 })
    const conn = await pool.acquire()
    const running = conn.execute('sleep', { ms: 30 })
    await pool.release(conn)
    const waiting = pool.execute('echo', { after: true })
    await expect(running).resolves.toMatchObject({ status: 'success' })
    await expect(waiting).resolves.toEqual({ status: 'success', result: { after: true } })
    expect(mock.requestLog.map((r) => r.type)).toEqual(['sleep', 'echo'])
  })

  it('a lease whose connection broke reports it', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const conn = await pool.acquire()
    mock.setFault('garbage')
    expect((await rejection(conn.execute('echo'))).code).toBe('ERR_INVALID_RESPONSE')
    expect((await rejection(conn.execute('echo'))).code).toBe('ERR_CONNECTION_CLOSED')
    expect(conn.inUse).toBe(false)
    await conn.release()
    await expect(pool.execute('echo', { fine: 1 })).resolves.toMatchObject({ status: 'success' })
  })

  it('release() of something else is a TypeError', async () => {
    const pool = new ConnectionPool({ minConnections: 0 })
    await expect(pool.release({ id: 'conn-1' })).rejects.toThrow(TypeError)
    await pool.shutdown()
  })
})
