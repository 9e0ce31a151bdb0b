// Every rejection has a stable code; a bad reply fails that one call, and the connection it
// came on is discarded, never reused out of step.

import net from 'node:net'
import { describe, expect, it } from 'vitest'

import { BlenderPoolError } from '../../index.mjs'
import { deadEndpoint, mockBlender, poolFor, rejection } from '../helpers.mjs'

describe('errors', () => {
  it("ERR_CONNECT when nothing listens, once the caller's wait is over", async () => {
    const dead = await deadEndpoint()
    const pool = poolFor(dead, { connectionTimeout: 300 })
    const started = Date.now()
    const err = await rejection(pool.execute('get_scene_info'))
    expect(Date.now() - started).toBeGreaterThanOrEqual(290)
    expect(err).toBeInstanceOf(BlenderPoolError)
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('ERR_CONNECT')
    expect(err.message).toMatch(/^Failed to connect to Blender: /)
    expect(err.message).toContain(`${dead.host}:${dead.port}`)
    expect(pool.getStats().connectFailures).toBeGreaterThanOrEqual(2) // retried with back-off meanwhile
  })

  it('ERR_RESPONSE_TIMEOUT when Blender never answers, then a new connection serves the next call', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { socketTimeout: 150 })
    mock.setFault('no-reply')
    const err = await rejection(pool.execute('echo', { n: 1 }))
    expect(err.code).toBe('ERR_RESPONSE_TIMEOUT')
    expect(err.message).toMatch(/^Response timeout/)
    await expect(pool.execute('echo', { n: 2 })).resolves.toEqual({ status: 'success', result: { n: 2 } })
    expect(mock.connectionsOpened).toBe(2)
    await mock.waitFor((m) => m.openConnections === 1)
  })

  it('restarts the reply timeout whenever bytes arrive', async () => {
    // A reply in 6 pieces 50 ms apart: 250 ms in all, more than the 200 ms timeout, but never
    // 200 ms without a byte. It must succeed.
    const reply = Buffer.from(JSON.stringify({ status: 'success', result: 'slow but steady' }))
    const server = net.createServer((socket) => {
      socket.once('data', async () => {
        for (let i = 0; i < 6; i++) {
          socket.write(reply.subarray(Math.floor((i * reply.length) / 6), Math.floor(((i + 1) * reply.length) / 6)))
          if (i < 5) await new Promise((resolve) => setTimeout(resolve, 50))
        }
      })
    })
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const pool = poolFor({ port: server.address().port }, { socketTimeout: 200 })
      const started = Date.now()
      await expect(pool.execute('slow')).resolves.toEqual({ status: 'success', result: 'slow but steady' })
      expect(Date.now() - started).toBeGreaterThanOrEqual(200)
      await pool.shutdown()
    } finally {
      server.close()
    }
  })

  it.each([
    ['close', 'ERR_CONNECTION_CLOSED', /^Connection closed/],
    ['half-reply', 'ERR_CONNECTION_CLOSED', /^Connection closed/],
    ['garbage', 'ERR_INVALID_RESPONSE', /^Invalid response structure from Blender\. .*got: not json at all\}$/],
    ['invalid-utf8', 'ERR_INVALID_RESPONSE', /UTF-8/],
    ['non-object', 'ERR_INVALID_RESPONSE', /got: \[1,2,3\]$/],
    ['bad-status', 'ERR_INVALID_RESPONSE', /got: \{"status":"weird","result":1\}$/],
    ['bad-message', 'ERR_INVALID_RESPONSE', /message is not a string/],
  ])('fault %s rejects with %s and discards the connection', async (fault, code, message) => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    await pool.execute('echo', { warm: true })
    mock.setFault(fault)
    const err = await rejection(pool.execute('echo', { n: 1 }))
    expect(err.code).toBe(code)
    expect(err.message).toMatch(message)
    // The next call succeeds, on a new connection; the old one is closed.
    await expect(pool.execute('echo', { n: 2 })).resolves.toEqual({ status: 'success', result: { n: 2 } })
    expect(mock.requestLog.at(-1).connectionId).toBe(2)
    await mock.waitFor((m) => m.openConnections === 1)
    expect(pool.getStats()).toMatchObject({ totalConnections: 1, failedRequests: 1, totalRequests: 2 })
  })

  it('ERR_RESPONSE_TOO_LARGE past maxResponseBytes, without buffering the rest', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxResponseBytes: 100_000 })
    const err = await rejection(pool.execute('big', { bytes: 5_000_000 }))
    expect(err.code).toBe('ERR_RESPONSE_TOO_LARGE')
    expect(err.message).toContain('100000')
    await expect(pool.execute('big', { bytes: 1000 })).resolves.toMatchObject({ status: 'success' })
    expect(mock.connectionsOpened).toBe(2)
  })

  it('ERR_POOL_TIMEOUT when no connection frees up within connectionTimeout', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1, connectionTimeout: 100 })
    const held = await pool.acquire()
    const err = await rejection(pool.execute('echo'))
    expect(err.code).toBe('ERR_POOL_TIMEOUT')
    expect(err.message).toBe('Connection pool timeout - no connections available')
    expect(pool.getStats().pendingRequests).toBe(0)
    await held.release()
    expect(mock.requests).toBe(0)
  })
})

describe('error codes are written once', () => {
  it('the typings and docs/errors.md list exactly the codes the core can give', async () => {
    const { readFileSync } = await import('node:fs')
    const { ConnectionPool } = await import('../../index.mjs')
    const pool = new ConnectionPool({ minConnections: 0 })
    // getMetrics().failures has one key per code, from the core's PoolError::CODES.
    const core = Object.keys(pool.getMetrics().failures).sort()
    await pool.shutdown()
    const dts = readFileSync(new URL('../../index.d.ts', import.meta.url), 'utf8')
    const union = /export type BlenderPoolErrorCode =([\s\S]*?)\n\n/.exec(dts)[1]
    const typed = [...union.matchAll(/\| '([A-Z_]+)'/g)].map((m) => m[1]).sort()
    const table = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
    const documented = [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]).sort()
    expect(core).toHaveLength(11)
    expect(typed).toEqual(core)
    expect(documented).toEqual(core)
  })
})
