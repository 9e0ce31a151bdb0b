// One test per fault Blender or the network can throw: the error the caller sees, what the
// server saw, that the next call is served once the fault clears, and that sockets go back to
// baseline.
import { describe, expect, it } from 'vitest'

import { mockBlender, poolFor, rejection, until } from '../helpers.mjs'

/** The pool's and the server's socket counts agree with `n` open connections. */
async function socketsAt(pool, mock, n) {
  await mock.waitFor((m) => m.openConnections === n)
  await until(() => pool.getStats().totalConnections === n)
}

/** Runs `fault` on a warmed-up pool and returns the rejection; then checks the recovery. */
async function faultThenRecover({ fault, options = {}, config = {}, call = (p) => p.execute('echo', { n: 1 }) }) {
  const mock = await mockBlender()
  const pool = poolFor(mock, { socketTimeout: 200, ...config })
  await pool.execute('echo', { warm: true })
  mock.setFault(fault, options)
  const started = Date.now()
  const err = await rejection(call(pool))
  const elapsed = Date.now() - started
  await expect(pool.execute('echo', { after: fault })).resolves.toEqual({ status: 'success', result: { after: fault } })
  await socketsAt(pool, mock, 1)
  return { err, mock, pool, elapsed }
}

describe('faults', () => {
  it('read and never reply: ERR_RESPONSE_TIMEOUT after socketTimeout, connection discarded', async () => {
    const { err, mock, elapsed } = await faultThenRecover({ fault: 'no-reply' })
    expect(err.code).toBe('ERR_RESPONSE_TIMEOUT')
    expect(elapsed).toBeGreaterThanOrEqual(195)
    expect(mock.requestLog.map((r) => r.connectionId)).toEqual([1, 1, 2])
  })

  it('half-open (silent, never closes): ERR_RESPONSE_TIMEOUT, and the pool moves on', async () => {
    const { err, mock } = await faultThenRecover({ fault: 'half-open' })
    expect(err.code).toBe('ERR_RESPONSE_TIMEOUT')
    expect(mock.connectionsOpened).toBe(2)
  })

  it('reply after a delay within socketTimeout: succeeds on the same connection', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { socketTimeout: 500 })
    mock.setFault('delay', { delayMs: 150 })
    await expect(pool.execute('echo', { slow: 1 })).resolves.toEqual({ status: 'success', result: { slow: 1 } })
    await pool.execute('echo')
    expect(mock.connectionsOpened).toBe(1)
  })

  it('reply after a delay beyond socketTimeout: ERR_RESPONSE_TIMEOUT, the late reply never reaches anyone', async () => {
    const { err, mock } = await faultThenRecover({ fault: 'delay', options: { delayMs: 400 } })
    expect(err.code).toBe('ERR_RESPONSE_TIMEOUT')
    expect(mock.connectionsOpened).toBe(2)
  })

  it('one byte at a time: succeeds, connection kept', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    mock.setFault('trickle')
    await expect(pool.execute('echo', { t: 'x'.repeat(500) })).resolves.toMatchObject({ status: 'success' })
    await pool.execute('echo')
    expect(mock.connectionsOpened).toBe(1)
  })

  it('close halfway through a reply: ERR_CONNECTION_CLOSED', async () => {
    const { err } = await faultThenRecover({ fault: 'half-reply' })
    expect(err.code).toBe('ERR_CONNECTION_CLOSED')
    expect(err.message).toMatch(/incomplete reply/)
  })

  it('part of a reply and a reset arriving together (Blender crashing mid-reply): ERR_CONNECTION_CLOSED at once', async () => {
    // socketTimeout far off: the failure must come from the reset, not from the reply timeout.
    const { err, mock, elapsed } = await faultThenRecover({ fault: 'half-reset', config: { socketTimeout: 60_000 } })
    expect(err.code).toBe('ERR_CONNECTION_CLOSED')
    // Linux reports the reset after the bytes; Windows (here: wine) may report the close.
    expect(err.message).toMatch(
      /^Connection closed \((read failed: |Blender closed the connection after \d+ bytes of an incomplete reply)/,
    )
    expect(elapsed).toBeLessThan(30_000)
    expect(mock.resets).toBe(1)
  })

  it('reset (RST) instead of a reply: ERR_CONNECTION_CLOSED', async () => {
    const { err, mock } = await faultThenRecover({ fault: 'reset' })
    expect(err.code).toBe('ERR_CONNECTION_CLOSED')
    expect(mock.resets).toBe(1)
  })

  it.each([
    ['garbage', 'ERR_INVALID_RESPONSE'],
    ['non-object', 'ERR_INVALID_RESPONSE'],
    ['invalid-utf8', 'ERR_INVALID_RESPONSE'],
    ['bad-status', 'ERR_INVALID_RESPONSE'],
  ])('%s: %s, connection discarded', async (fault, code) => {
    const { err, mock } = await faultThenRecover({ fault })
    expect(err.code).toBe(code)
    expect(mock.connectionsOpened).toBe(2)
  })

  it('a huge body: ERR_RESPONSE_TOO_LARGE without buffering the rest', async () => {
    const { err, pool } = await faultThenRecover({
      fault: 'huge',
      options: { bytes: 80 * 1024 * 1024 },
      config: { maxResponseBytes: 2 * 1024 * 1024 },
    })
    expect(err.code).toBe('ERR_RESPONSE_TOO_LARGE')
    expect(pool.getStats().failedRequests).toBe(1)
  })

  it('two documents back to back: the first answers, the connection is discarded', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    mock.setFault('two-documents')
    await expect(pool.execute('echo', { n: 1 })).resolves.toEqual({ status: 'success', result: { n: 1 } })
    await expect(pool.execute('echo', { n: 2 })).resolves.toEqual({ status: 'success', result: { n: 2 } })
    expect(mock.requestLog.map((r) => r.connectionId)).toEqual([1, 2])
    await socketsAt(pool, mock, 1)
  })

  it('accept and never read: ERR_RESPONSE_TIMEOUT, then a normal server is used again', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { socketTimeout: 200 })
    await mock.setAcceptMode('never-read')
    expect((await rejection(pool.execute('echo', { n: 1 }))).code).toBe('ERR_RESPONSE_TIMEOUT')
    await mock.setAcceptMode('normal')
    await expect(pool.execute('echo', { n: 2 })).resolves.toMatchObject({ status: 'success' })
    expect(mock.requestLog.map((r) => r.params.n)).toEqual([2])
  })

  it('refused connections: callers wait through retries and are served once Blender is back', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { connectionTimeout: 5000 })
    await mock.setAcceptMode('refuse')
    const calls = Array.from({ length: 10 }, (_, i) => pool.execute('echo', { i }))
    await until(() => pool.getStats().connectFailures >= 2)
    await mock.setAcceptMode('normal')
    const replies = await Promise.all(calls)
    expect(replies.map((r) => r.result.i)).toEqual([...Array(10).keys()])
    // Each request reached Blender exactly once.
    expect(mock.requestLog.map((r) => r.params.i).sort((a, b) => a - b)).toEqual([...Array(10).keys()])
  })

  it('refused connections: ERR_CONNECT after connectRetryTimeout, not connectionTimeout, with few attempts', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { connectionTimeout: 30_000, connectRetryTimeout: 400 })
    await mock.setAcceptMode('refuse')
    const started = Date.now()
    const errors = await Promise.all(Array.from({ length: 30 }, () => rejection(pool.execute('echo'))))
    const waited = Date.now() - started
    expect(new Set(errors.map((e) => e.code))).toEqual(new Set(['ERR_CONNECT']))
    expect(errors[0].message).toBe(
      `Failed to connect to Blender: connection refused (127.0.0.1:${mock.port}): is Blender running with the MCP add-on's server started?`,
    )
    expect(waited).toBeGreaterThanOrEqual(400)
    expect(waited).toBeLessThan(10_000)
    // A trickle, not a storm: the first connects (one per free slot, 5), then one probe at a
    // time 25 to 250 ms apart, whatever the number of callers (30 here).
    expect(pool.getStats().connectFailures).toBeLessThanOrEqual(12)
    expect(pool.getStats().pendingRequests).toBe(0)
  })

  it('restart while idle: stale connections are dropped unused and the request is sent once', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 3 })
    await Promise.all([1, 2, 3].map((i) => pool.execute('sleep', { ms: 2, i })))
    await mock.restart()
    // No waiting for the pool to notice: the very next call must succeed.
    await expect(pool.execute('echo', { after: 'restart' })).resolves.toEqual({
      status: 'success',
      result: { after: 'restart' },
    })
    expect(mock.requestLog.filter((r) => r.type === 'echo')).toHaveLength(1)
    expect(pool.getStats().failedRequests).toBe(0)
  })

  it('close-on-accept: ERR_CONNECTION_CLOSED or a retry, never a hang', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { connectionTimeout: 500 })
    await mock.setAcceptMode('close-on-accept')
    const err = await rejection(pool.execute('echo'))
    expect(['ERR_CONNECTION_CLOSED', 'ERR_CONNECT', 'ERR_POOL_TIMEOUT']).toContain(err.code)
    await mock.setAcceptMode('normal')
    await expect(pool.execute('echo', { ok: 1 })).resolves.toMatchObject({ status: 'success' })
  })

  it('a connection closed by Blender after reading the request is never re-sent', async () => {
    const { err, mock } = await faultThenRecover({ fault: 'close' })
    expect(err.code).toBe('ERR_CONNECTION_CLOSED')
    expect(mock.requestLog.filter((r) => r.params?.n === 1)).toHaveLength(1)
  })

  it('maxLifetime retires connections at their next idle moment', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxLifetime: 150 })
    await pool.execute('echo')
    await mock.waitFor((m) => m.openConnections === 0)
    await pool.execute('echo')
    expect(mock.connectionsOpened).toBe(2)
  })
})
