// Both framings, each against a small server of its own: the classic add-on's bare JSON (request
// JSON + '\n', reply one JSON object with no delimiter, however it is split) and the
// length-prefixed framing of newer add-ons.

import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'

import { ConnectionPool } from '../../index.mjs'
import { rejection } from '../helpers.mjs'

/** A length-prefixed Blender stand-in: echoes params, or answers what `reply(request)` says. */
async function lengthPrefixedServer(reply = (req) => ({ status: 'success', result: req.params ?? null })) {
  const seen = { requests: [], connections: 0, bytes: [] }
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    seen.connections++
    let buf = Buffer.alloc(0)
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      seen.bytes.push(chunk)
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0)
        const req = JSON.parse(buf.subarray(4, 4 + len).toString('utf8'))
        buf = buf.subarray(4 + len)
        seen.requests.push(req)
        const out = reply(req)
        const body = Buffer.isBuffer(out) ? out : Buffer.from(JSON.stringify(out))
        const head = Buffer.alloc(4)
        head.writeUInt32BE(body.length)
        // Prefix and body in separate writes: the client must reassemble them.
        socket.write(head)
        socket.write(body)
      }
    })
    socket.on('error', () => {})
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: server.address().port, seen, close: () => new Promise((resolve) => server.close(resolve)) }
}

/**
 * A classic (bare JSON) Blender stand-in: reads newline-ended requests, answers what
 * `reply(request)` says (an object, or a string sent as it is), written in the pieces
 * `split(text)` gives, one write per turn of the event loop.
 */
async function bareJsonServer(reply, split = (text) => [text]) {
  const seen = { requests: [], connections: 0, bytes: [] }
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    seen.connections++
    let buf = ''
    socket.on('data', async (chunk) => {
      seen.bytes.push(chunk)
      buf += chunk.toString('utf8')
      let nl = buf.indexOf('\n')
      while (nl >= 0) {
        const req = JSON.parse(buf.slice(0, nl))
        buf = buf.slice(nl + 1)
        seen.requests.push(req)
        const out = reply(req)
        for (const piece of split(typeof out === 'string' ? out : JSON.stringify(out))) {
          socket.write(piece)
          await new Promise((resolve) => setImmediate(resolve))
        }
        nl = buf.indexOf('\n')
      }
    })
    socket.on('error', () => {})
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: server.address().port, seen, close: () => new Promise((resolve) => server.close(resolve)) }
}

const open = []
afterEach(async () => {
  while (open.length > 0) await open.pop()()
})

async function setUp(reply, config = {}) {
  const server = await lengthPrefixedServer(reply)
  const pool = new ConnectionPool({
    host: '127.0.0.1',
    port: server.port,
    minConnections: 0,
    framing: 'length-prefixed',
    ...config,
  })
  open.push(server.close, () => pool.shutdown())
  return { server, pool }
}

describe("framing: 'length-prefixed'", () => {
  it('frames requests with a 4-byte big-endian length and reads framed replies', async () => {
    const { server, pool } = await setUp()
    expect(pool.config.framing).toBe('length-prefixed')
    await expect(pool.execute('echo', { n: 1, s: 'é' })).resolves.toEqual({
      status: 'success',
      result: { n: 1, s: 'é' },
    })
    const wire = Buffer.concat(server.seen.bytes)
    const body = Buffer.from(JSON.stringify({ type: 'echo', params: { n: 1, s: 'é' } }))
    expect(wire.readUInt32BE(0)).toBe(body.length)
    expect(wire.subarray(4)).toEqual(body) // no newline
  })

  it('many calls on few connections, each reply to its own request', async () => {
    const { server, pool } = await setUp(undefined, { maxConnections: 2 })
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.execute('echo', { i })))
    expect(replies.map((r) => r.result.i)).toEqual([...Array(50).keys()])
    expect(server.seen.connections).toBeLessThanOrEqual(2)
  })

  it('refuses a length prefix over maxResponseBytes without reading the body', async () => {
    const huge = Buffer.from(JSON.stringify({ status: 'success', result: 'x'.repeat(5000) }))
    const { pool } = await setUp(() => huge, { maxResponseBytes: 1000 })
    expect((await rejection(pool.execute('echo'))).code).toBe('ERR_RESPONSE_TOO_LARGE')
  })

  it('a framed body that is not a Blender response is ERR_INVALID_RESPONSE', async () => {
    const { pool } = await setUp(() => Buffer.from('[1,2,3]'))
    expect((await rejection(pool.execute('echo'))).code).toBe('ERR_INVALID_RESPONSE')
  })

  it("an unknown framing is a RangeError naming 'framing'", () => {
    expect(() => new ConnectionPool({ framing: 'xml' })).toThrow(/framing/)
    expect(() => new ConnectionPool({ framing: 1 })).toThrow(TypeError)
  })
})

describe("framing: 'json' (the default)", () => {
  const echo = (req) => ({ status: 'success', result: req.params ?? null })

  async function bareSetUp(reply, split, config = {}) {
    const server = await bareJsonServer(reply, split)
    const pool = new ConnectionPool({ host: '127.0.0.1', port: server.port, minConnections: 0, ...config })
    open.push(server.close, () => pool.shutdown())
    return { server, pool }
  }

  it('sends the request as JSON and a newline, and reads a bare JSON reply', async () => {
    const { server, pool } = await bareSetUp(echo)
    expect(pool.config.framing).toBe('json')
    await expect(pool.execute('echo', { n: 1, s: 'é' })).resolves.toEqual({
      status: 'success',
      result: { n: 1, s: 'é' },
    })
    expect(Buffer.concat(server.seen.bytes).toString('utf8')).toBe(
      `${JSON.stringify({ type: 'echo', params: { n: 1, s: 'é' } })}\n`,
    )
  })

  it('reassembles a reply sent one byte at a time, braces and escapes inside strings included', async () => {
    const tricky = { status: 'success', result: { s: '}{"\\', nested: [{ a: '}' }], u: 'é€😀' } }
    const bytes = (text) => [...Buffer.from(text)].map((b) => Buffer.from([b]))
    const { pool } = await bareSetUp(() => tricky, bytes)
    await expect(pool.execute('echo')).resolves.toEqual(tricky)
    // The connection stayed in step: the next call on it gets its own reply.
    await expect(pool.execute('echo')).resolves.toEqual(tricky)
    expect(pool.getStats().connectionsOpened).toBe(1)
  })

  it('drops whitespace before a reply, and needs no delimiter after it', async () => {
    const { pool } = await bareSetUp(
      (req) => ` \r\n\t${JSON.stringify(echo(req))}`,
      (text) => [text.slice(0, 3), text.slice(3)],
    )
    await expect(pool.execute('echo', { n: 2 })).resolves.toEqual({ status: 'success', result: { n: 2 } })
    await expect(pool.execute('echo', { n: 3 })).resolves.toEqual({ status: 'success', result: { n: 3 } })
  })

  it('many calls on few connections, each reply to its own request', async () => {
    const { server, pool } = await bareSetUp(echo, (text) => [text.slice(0, 5), text.slice(5)], { maxConnections: 2 })
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.execute('echo', { i })))
    expect(replies.map((r) => r.result.i)).toEqual([...Array(50).keys()])
    expect(server.seen.connections).toBeLessThanOrEqual(2)
  })

  it('a bare reply that is not a Blender response is ERR_INVALID_RESPONSE', async () => {
    const { pool } = await bareSetUp(() => '[1,2,3]')
    expect((await rejection(pool.execute('echo'))).code).toBe('ERR_INVALID_RESPONSE')
  })

  it('a bare reply over maxResponseBytes is ERR_RESPONSE_TOO_LARGE', async () => {
    const { pool } = await bareSetUp(() => ({ status: 'success', result: 'x'.repeat(5000) }), undefined, {
      maxResponseBytes: 1000,
    })
    expect((await rejection(pool.execute('echo'))).code).toBe('ERR_RESPONSE_TOO_LARGE')
  })
})
