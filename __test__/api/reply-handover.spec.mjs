// How a reply reaches JavaScript: whatever goes wrong turning it into a JS value fails that one
// call; a reply that reached the socket in time is delivered even when the JS thread was busy;
// what JSON.parse accepts, the pool accepts.

import { constants } from 'node:buffer'
import { describe, expect, it } from 'vitest'

import { ConnectionPool } from '../../index.mjs'
import { mockBlender, poolFor, runScript } from '../helpers.mjs'

const entry = new URL('../../index.mjs', import.meta.url).href
const binding = new URL('../../binding.js', import.meta.url).href

describe('handing replies to JavaScript', () => {
  it('maxResponseBytes cannot exceed the longest string JavaScript can hold', async () => {
    const max = constants.MAX_STRING_LENGTH
    let err
    try {
      new ConnectionPool({ maxResponseBytes: max + 1 })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(RangeError)
    expect(err.code).toBe('ERR_OUT_OF_RANGE')
    expect(err.message).toBe(
      `Invalid ConnectionPool config: maxResponseBytes must be at most ${max}, the longest string JavaScript can hold ` +
        `(a reply is handed over as one string), got ${max + 1}`,
    )
    expect(() => new ConnectionPool({ maxResponseBytes: 4294967295 })).toThrow(/the longest string JavaScript can hold/)
    const pool = new ConnectionPool({ maxResponseBytes: max, minConnections: 0 })
    expect(pool.config.maxResponseBytes).toBe(max)
    await pool.shutdown()
  })

  it('a reply whose string cannot be created rejects that call, never throws out of the callback', async () => {
    const mock = await mockBlender()
    const run = await runScript(
      `import native from ${JSON.stringify(binding)}
       import { ConnectionPool } from ${JSON.stringify(entry)}
       const uncaught = []
       process.on('uncaughtException', (err) => uncaught.push(String(err)))
       const pool = new ConnectionPool({ host: '127.0.0.1', port: ${mock.port}, minConnections: 0 })
       await pool.execute('echo', { warm: 1 })
       native.__setFailpoint('fail-reply-string', true)
       const err = await pool.executeRaw('echo', { big: 'x'.repeat(100000) }).then(() => null, (e) => e)
       native.__setFailpoint('fail-reply-string', false)
       const after = await pool.execute('echo', { after: 1 })
       await pool.shutdown()
       process.stdout.write(JSON.stringify({ name: err?.name, code: err?.code, message: err?.message, after, uncaught }))`,
    )
    expect(run.code).toBe(0)
    const out = JSON.parse(run.stdout)
    expect(out.uncaught).toEqual([])
    expect(out).toMatchObject({ name: 'BlenderPoolError', code: 'ERR_INTERNAL' })
    expect(out.message).toMatch(
      /^Internal error in blender-mcp-pool: could not hand the outcome to JavaScript: Invalid string length/,
    )
    // The reply itself was fine: the connection carries on.
    expect(out.after).toEqual({ status: 'success', result: { after: 1 } })
    expect(mock.connectionsOpened).toBe(1)
  })

  it('a reply on the socket before the JS thread went busy past socketTimeout is delivered, not timed out', async () => {
    const mock = await mockBlender()
    // The pool runs in a child whose thread goes busy; Blender (the mock, here) stays responsive.
    const run = await runScript(
      `import { ConnectionPool } from ${JSON.stringify(entry)}
       const pool = new ConnectionPool({ host: '127.0.0.1', port: ${mock.port}, minConnections: 0, socketTimeout: 400 })
       await pool.execute('echo', { warm: 1 })
       const reply = pool.execute('echo', { busy: 1 }).then((r) => r.result, (e) => e.code)
       // The request is on the wire; the thread now runs a long synchronous task.
       const end = performance.now() + 1500
       while (performance.now() < end) {}
       const busy = await reply
       const stats = pool.getStats()
       await pool.shutdown()
       process.stdout.write(JSON.stringify({ busy, failed: stats.failedRequests }))`,
    )
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({ busy: { busy: 1 }, failed: 0 })
    expect(mock.connectionsOpened).toBe(1)
  })

  it("an error message with a lone surrogate escape (Python's json.dumps of a non-UTF-8 file name) is a reply", async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const message = "[Errno 2] No such file: '/tmp/caf\udce9.blend'"
    const text = await pool.executeRaw('fail', { message })
    expect(text).toContain('caf\\udce9.blend')
    expect(JSON.parse(text)).toEqual({ status: 'error', message })
    await expect(pool.execute('fail', { message })).resolves.toEqual({ status: 'error', message })
    expect(mock.connectionsOpened).toBe(1)
  })
})
