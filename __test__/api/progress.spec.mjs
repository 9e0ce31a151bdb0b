// onProgress: reports while a call waits (its phase, the bytes so far, the command holding
// Blender), never after it settles, never breaking it; mcpCallOptions: the bridge from an MCP
// tool handler's `extra`; and the timeout that names the command keeping Blender busy.
import { describe, expect, it } from 'vitest'
import { AbortError, mcpCallOptions } from '../../index.mjs'
import { BlenderSocketClient, mcpCallOptions as fromSocketClient } from '../../socket-client.mjs'
import { mockBlender, poolFor, rejection } from '../helpers.mjs'

/** A promise, and the function that resolves it (a report the test waits for). */
function signal() {
  let resolve
  const promise = new Promise((r) => {
    resolve = r
  })
  return { promise, resolve }
}

describe('onProgress', () => {
  it('reports a call sent behind a long command, naming it, then stops once the call settles', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 2 })
    const long = pool.execute('sleep', { ms: 1200 })
    await mock.waitFor((m) => m.requestLog.some((r) => r.type === 'sleep'))
    const reports = []
    const reply = await pool.execute(
      'echo',
      { n: 1 },
      { onProgress: (info) => reports.push(info), progressInterval: 200 },
    )
    const settled = reports.length
    expect(reply).toEqual({ status: 'success', result: { n: 1 } })
    expect(settled).toBeGreaterThanOrEqual(2)
    // Named while the long one runs; a report may come after it answered and before this call's
    // reply (a slow machine: wine, qemu), with nothing left to name.
    expect(reports.filter((info) => info.busy !== null).length).toBeGreaterThanOrEqual(2)
    for (const info of reports) {
      expect(info.phase).toBe('sent')
      if (info.busy !== null) {
        expect(info.busy.command).toBe('sleep')
        expect(info.busy.runningMs).toBeGreaterThan(info.elapsedMs)
      }
      expect(info.bytesReceived).toBe(0)
    }
    // Steady: one report per interval, in order.
    const elapsed = reports.map((info) => info.elapsedMs)
    expect(elapsed).toEqual([...elapsed].sort((a, b) => a - b))
    await long
    // Never after the call settled (a later report would land in `reports` during this wait).
    await pool.execute('sleep', { ms: 450 })
    expect(reports.length).toBe(settled)
    await pool.shutdown()
  })

  it('reports a call waiting for a connection, and the bytes of a reply as they arrive', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1 })
    const long = pool.execute('sleep', { ms: 600 })
    await mock.waitFor((m) => m.requestLog.some((r) => r.type === 'sleep'))
    const waiting = signal()
    const queued = pool.execute('echo', { n: 2 }, { onProgress: waiting.resolve, progressInterval: 100 })
    const info = await waiting.promise
    expect(info.phase).toBe('waiting')
    expect(info.busy.command).toBe('sleep')
    await Promise.all([long, queued])
    // A big reply streamed slowly, with an interval far longer than the call: every report comes
    // from bytes arriving, says `receiving`, and counts part of the reply, growing.
    mock.setFault('huge', { bytes: 8 * 1024 * 1024, chunkDelayMs: 150 })
    const reports = []
    const raw = await pool.executeRaw('echo', {}, { progressInterval: 60_000, onProgress: (i) => reports.push(i) })
    expect(reports.length).toBeGreaterThanOrEqual(1)
    expect(reports.every((i) => i.phase === 'receiving' && i.bytesReceived > 0 && i.bytesReceived < raw.length)).toBe(
      true,
    )
    const bytes = reports.map((i) => i.bytesReceived)
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b))
    await pool.shutdown()
  })

  it('a callback that throws never breaks the call', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    let calls = 0
    const reply = await pool.execute(
      'sleep',
      { ms: 500 },
      {
        progressInterval: 100,
        onProgress: () => {
          calls++
          throw new Error('a buggy progress handler')
        },
      },
    )
    expect(reply.result).toEqual({ slept: 500 })
    expect(calls).toBeGreaterThanOrEqual(2)
    await pool.shutdown()
  })

  it('bad progress options are refused before anything is sent', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const notAFunction = await rejection(pool.execute('echo', {}, { onProgress: 'yes' }))
    expect([notAFunction.name, notAFunction.code]).toEqual(['TypeError', 'ERR_INVALID_ARG_TYPE'])
    const badInterval = await rejection(pool.execute('echo', {}, { onProgress: () => {}, progressInterval: 0 }))
    expect([badInterval.name, badInterval.code]).toEqual(['RangeError', 'ERR_OUT_OF_RANGE'])
    expect(mock.requests).toBe(0)
    await pool.shutdown()
  })

  it('a timeout behind a long command names it', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 2 })
    const long = pool.execute('sleep', { ms: 900 })
    await mock.waitFor((m) => m.requestLog.some((r) => r.type === 'sleep'))
    const err = await rejection(pool.execute('echo', {}, { timeout: 300 }))
    expect(err.code).toBe('ERR_RESPONSE_TIMEOUT')
    expect(err.message).toMatch(
      /^Response timeout \(no data from Blender for \d+ ms; Blender runs one command at a time and "sleep" has been running for \d+ ms\)$/,
    )
    await long
    await pool.shutdown()
  })
})

describe('mcpCallOptions', () => {
  it("sends notifications/progress with the request's token, numbered, and passes the signal", async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const sent = []
    const controller = new AbortController()
    const extra = {
      signal: controller.signal,
      _meta: { progressToken: 'tok-7' },
      sendNotification: (n) => sent.push(n),
    }
    const options = mcpCallOptions(extra, { progressInterval: 100 })
    expect(options.signal).toBe(controller.signal)
    await pool.execute('sleep', { ms: 800 }, options)
    await new Promise((resolve) => setImmediate(resolve)) // notifications are sent a microtask later
    expect(sent.length).toBeGreaterThanOrEqual(2)
    sent.forEach((n, i) => {
      expect(n.method).toBe('notifications/progress')
      expect(n.params.progressToken).toBe('tok-7')
      expect(n.params.progress).toBe(i + 1)
      expect(n.params.message).toMatch(/^waiting for Blender \(\d+ ms\)$/)
    })
    // The client's cancel aborts the call.
    const running = pool.execute('sleep', { ms: 5000 }, mcpCallOptions(extra))
    controller.abort()
    expect(await rejection(running)).toBeInstanceOf(AbortError)
    await pool.shutdown()
  })

  it('sends nothing without a progress token, and a failing transport never breaks the call', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const sent = []
    const noToken = mcpCallOptions({ sendNotification: (n) => sent.push(n) }, { progressInterval: 100 })
    expect(noToken.onProgress).toBeUndefined()
    await pool.execute('sleep', { ms: 250 }, noToken)
    expect(sent).toEqual([])
    const failing = mcpCallOptions(
      { _meta: { progressToken: 1 }, sendNotification: () => Promise.reject(new Error('transport closed')) },
      { progressInterval: 100 },
    )
    expect((await pool.execute('sleep', { ms: 250 }, failing)).result).toEqual({ slept: 250 })
    expect(mcpCallOptions(undefined)).toEqual({})
    expect(fromSocketClient).toBe(mcpCallOptions)
    await pool.shutdown()
  })
})

describe('sendCommand options', () => {
  it('an aborted sendCommand rejects at once and its connection is discarded', async () => {
    const mock = await mockBlender()
    const client = new BlenderSocketClient(mock.host, mock.port, 5000)
    await client.sendCommand('echo', { warm: 1 })
    const opened = mock.connectionsOpened
    const controller = new AbortController()
    const running = client.sendCommand('sleep', { ms: 3000 }, { signal: controller.signal })
    await mock.waitFor((m) => m.requestLog.some((r) => r.type === 'sleep'))
    controller.abort()
    const err = await rejection(running)
    expect(err).toBeInstanceOf(AbortError)
    expect(err.code).toBe('ABORT_ERR')
    await mock.waitFor((m) => m.openConnections === 0)
    expect(await client.sendCommand('echo', { after: 1 })).toEqual({ status: 'success', result: { after: 1 } })
    expect(mock.connectionsOpened).toBe(opened + 1)
    // The two-argument form is unchanged, and options may carry their own timeout.
    const timedOut = await rejection(client.sendCommand('sleep', { ms: 2000 }, { timeout: 100 }))
    expect(timedOut.code).toBe('ERR_RESPONSE_TIMEOUT')
    await client.disconnect()
  })
})
