// blender-mcp-pool/socket-client: the drop-in for the ClaudeKit server's socket-client.ts. Which
// pool each client's commands run on, what disconnect() closes, the server's error messages with
// the pool's codes, and configureConnectionPool(). Over MCP: mcp.spec.mjs.
import { createRequire } from 'node:module'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startMockBlender } from '../../mock/blender-mock.mjs'
import { deadEndpoint, mockBlender, rejection, runScript } from '../helpers.mjs'

// Both entries through Node's own require, as a consumer loads them: vitest evaluates an ESM
// import of ../index.mjs's CommonJS file itself, which would make a second instance of index.js
// (and of its default pool) beside the one socket-client.js requires.
const require = createRequire(import.meta.url)
const { BlenderPoolError, configureConnectionPool, getConnectionPool } = require('../../index.js')
const {
  BlenderSocketClient,
  BufferOverflowError,
  ChunkCountExceededError,
  getBlenderClient,
} = require('../../socket-client.js')

const MB50 = 50 * 1024 * 1024

// The default address (BLENDER_HOST/BLENDER_PORT) is this file's own mock, set before any pool
// exists: getConnectionPool()'s pool is created on first use, from the environment.
let home
beforeAll(async () => {
  home = await startMockBlender()
  process.env.BLENDER_HOST = home.host
  process.env.BLENDER_PORT = String(home.port)
})
afterAll(async () => {
  await getConnectionPool().shutdown()
  await home.stop()
})

describe('blender-mcp-pool/socket-client', () => {
  it("runs every default-address client's commands on getConnectionPool()'s pool, each call its own reply", async () => {
    const before = home.requests
    const clients = [getBlenderClient(), new BlenderSocketClient(), new BlenderSocketClient(home.host, home.port, 5000)]
    expect(getBlenderClient()).toBe(clients[0])
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => clients[i % 3].sendCommand('echo', { i })))
    expect(replies.map((r) => r.result.i)).toEqual([...Array(12).keys()])
    expect(home.requests - before).toBe(12)
    // The server's metrics module reads this pool: it is the one that carried the traffic.
    expect(getConnectionPool().getStats().totalRequests).toBe(12)
    expect(getConnectionPool().config.maxResponseBytes).toBe(MB50)
    expect(clients.every((c) => c.validateConnection())).toBe(true)
  })

  it("the health check's client disconnects while a tool call runs: the call finishes, the pool stays open", async () => {
    const running = getBlenderClient().sendCommand('sleep', { ms: 200 })
    await home.waitFor((m) => m.requestLog.some((r) => r.type === 'sleep'))
    const health = new BlenderSocketClient(home.host, home.port, 5000)
    await health.connect()
    await expect(health.sendCommand('get_scene_info')).resolves.toMatchObject({ status: 'success' })
    await health.disconnect()
    await expect(running).resolves.toEqual({ status: 'success', result: { slept: 200 } })
    expect(getConnectionPool().getStats().totalConnections).toBeGreaterThan(0)
    expect(getBlenderClient().validateConnection()).toBe(true)
    await expect(getBlenderClient().sendCommand('echo', { after: 'health' })).resolves.toEqual({
      status: 'success',
      result: { after: 'health' },
    })
  })

  it('clients of another address share one pool, which closes when the last of them disconnects', async () => {
    const other = await mockBlender()
    const a = new BlenderSocketClient(other.host, other.port)
    const b = new BlenderSocketClient(other.host, other.port)
    expect(a.validateConnection()).toBe(false) // nothing created for asking
    expect(other.connectionsOpened).toBe(0)
    await a.connect()
    expect(a.validateConnection()).toBe(true)
    expect(b.validateConnection()).toBe(true) // the same pool
    await Promise.all([a.sendCommand('echo', { from: 'a' }), b.sendCommand('echo', { from: 'b' })])
    const homeRequests = home.requests
    await a.disconnect()
    await expect(b.sendCommand('echo', { from: 'b' })).resolves.toMatchObject({ result: { from: 'b' } })
    expect(other.openConnections).toBeGreaterThan(0)
    await b.disconnect() // the last share: the pool shuts down
    await other.waitFor((m) => m.openConnections === 0)
    expect(b.validateConnection()).toBe(false)
    // A disconnected client is usable again, on a new pool.
    const opened = other.connectionsOpened
    await expect(a.sendCommand('echo', { again: true })).resolves.toMatchObject({ result: { again: true } })
    expect(other.connectionsOpened).toBe(opened + 1)
    await a.disconnect()
    expect(home.requests).toBe(homeRequests) // none of it went to the default address
  })

  it('connect() resolves at once while every connection is busy with long commands', async () => {
    const other = await mockBlender()
    const client = new BlenderSocketClient(other.host, other.port)
    const done = []
    const long = Array.from({ length: 6 }, () =>
      client.sendCommand('sleep', { ms: 100 }).then(() => done.push('command')),
    )
    await other.waitFor((m) => m.requestLog.filter((r) => r.type === 'sleep').length === 5) // maxConnections
    await client.connect()
    done.push('connect')
    await Promise.all(long)
    expect(done[0]).toBe('connect')
    await client.disconnect()
  })

  it("errors keep the server's messages and carry the pool's code; the next call is served", async () => {
    const other = await mockBlender()
    const client = new BlenderSocketClient(other.host, other.port, 300)
    const cases = [
      [
        'no-reply',
        'ERR_RESPONSE_TIMEOUT',
        /^Response timeout - no complete JSON received within timeout period \(/,
        true,
      ],
      ['close', 'ERR_CONNECTION_CLOSED', /^Connection closed before complete response \(/, true],
      ['reset', 'ERR_CONNECTION_CLOSED', /^Connection closed before complete response \(/, true],
      ['garbage', 'ERR_INVALID_RESPONSE', /^Invalid response structure from Blender\. /, false], // the pool's own, already the server's
    ]
    for (const [fault, code, message, reworded] of cases) {
      other.setFault(fault)
      const err = await rejection(client.sendCommand('echo', { fault }))
      expect(err).toBeInstanceOf(BlenderPoolError)
      expect([fault, err.code]).toEqual([fault, code])
      expect(err.message).toMatch(message)
      if (reworded) expect(err.cause).toMatchObject({ name: 'BlenderPoolError', code }) // the pool's own wording
      await expect(client.sendCommand('echo', { after: fault })).resolves.toEqual({
        status: 'success',
        result: { after: fault },
      })
    }
    await client.disconnect()
  })

  it('a reply over 50 MB is a BufferOverflowError, not buffered past the cap', async () => {
    const other = await mockBlender()
    const client = new BlenderSocketClient(other.host, other.port)
    other.setFault('huge', { bytes: MB50 + 1 })
    const err = await rejection(client.sendCommand('get_scene_info'))
    expect(err).toBeInstanceOf(BufferOverflowError)
    expect(err).toMatchObject({
      name: 'BufferOverflowError',
      code: 'ERR_RESPONSE_TOO_LARGE',
      maxSize: MB50,
      totalBytes: MB50 + 1,
      chunkCount: 0,
    })
    expect(err.message).toMatch(/^Buffer exceeded maximum size: 52428800 bytes \(Response too large/)
    await expect(client.sendCommand('echo', { after: 'huge' })).resolves.toMatchObject({ result: { after: 'huge' } })
    await client.disconnect()
  })

  it("Blender unreachable: connect() and sendCommand reject ERR_CONNECT, 'Failed to connect to Blender: ' naming host:port", async () => {
    const dead = await deadEndpoint()
    const client = new BlenderSocketClient(dead.host, dead.port, 500)
    for (const attempt of [() => client.connect(), () => client.sendCommand('get_scene_info')]) {
      const err = await rejection(attempt())
      expect(err).toBeInstanceOf(BlenderPoolError)
      expect(err.code).toBe('ERR_CONNECT')
      expect(err.message).toMatch(/^Failed to connect to Blender: /)
      expect(err.message).toContain(`${dead.host}:${dead.port}`)
    }
    expect(client.validateConnection()).toBe(false)
    await client.disconnect()
  })

  it('bad arguments throw before anything is sent', async () => {
    expect(() => new BlenderSocketClient('')).toThrow(TypeError)
    expect(() => new BlenderSocketClient('localhost', 70000)).toThrow(RangeError)
    expect(() => new BlenderSocketClient('localhost', 9876, -1)).toThrow(RangeError)
    const before = home.requests
    const err = await rejection(getBlenderClient().sendCommand(''))
    expect(err).toBeInstanceOf(TypeError)
    expect(err.code).toBe('ERR_INVALID_ARG_TYPE')
    await expect(getBlenderClient().sendCommand('echo', [1])).rejects.toThrow(TypeError)
    expect(home.requests).toBe(before)
  })

  it("the error classes take the server's arguments and give its messages and fields", () => {
    const overflow = new BufferOverflowError(60_000_000, 50_000_000, 100)
    expect(overflow).toBeInstanceOf(Error)
    expect(overflow).toMatchObject({
      name: 'BufferOverflowError',
      totalBytes: 60_000_000,
      maxSize: 50_000_000,
      chunkCount: 100,
    })
    expect(overflow.message).toBe(
      'Buffer exceeded maximum size: 50000000 bytes (received 60000000 bytes after 100 chunks)',
    )
    const chunks = new ChunkCountExceededError(10001, 10000)
    expect(chunks).toMatchObject({ name: 'ChunkCountExceededError', chunkCount: 10001, maxChunks: 10000 })
    expect(chunks.message).toBe('Exceeded maximum chunk count: 10000 (received 10001 chunks)')
  })

  it("configureConnectionPool() before first use sets the shared pools' cap; afterwards it throws", async () => {
    expect(() => configureConnectionPool({ maxResponseBytes: 1000 })).toThrow(
      expect.objectContaining({ code: 'ERR_POOL_ALREADY_CONFIGURED' }),
    )
    const entry = new URL('../../index.mjs', import.meta.url).href
    const client = new URL('../../socket-client.mjs', import.meta.url).href
    const mock = new URL('../../mock/blender-mock.mjs', import.meta.url).href
    const { code, stdout, stderr } = await runScript(`
      import { configureConnectionPool, getConnectionPool } from ${JSON.stringify(entry)}
      import { BlenderSocketClient, BufferOverflowError, getBlenderClient } from ${JSON.stringify(client)}
      import { startMockBlender } from ${JSON.stringify(mock)}
      const [home, other] = [await startMockBlender(), await startMockBlender()]
      process.env.BLENDER_HOST = home.host
      process.env.BLENDER_PORT = String(home.port)
      const pool = configureConnectionPool({ maxResponseBytes: 1000, maxConnections: 2 })
      const out = { same: pool === getConnectionPool(), cap: pool.config.maxResponseBytes }
      const caps = []
      for (const c of [getBlenderClient(), new BlenderSocketClient(other.host, other.port)]) {
        await c.sendCommand('big', { bytes: 2000 }).catch((e) => caps.push(e instanceof BufferOverflowError && e.maxSize))
      }
      out.caps = caps
      out.otherAddressConnections = other.connectionsOpened
      try { configureConnectionPool({}) } catch (e) { out.again = e.code }
      process.stdout.write(JSON.stringify(out))
      await home.stop(); await other.stop()`)
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toEqual({
      same: true,
      cap: 1000,
      caps: [1000, 1000],
      otherAddressConnections: 1,
      again: 'ERR_POOL_ALREADY_CONFIGURED',
    })
  })
})
