// getMetrics() and metricsText(): counters since start and latency percentiles.
import { describe, expect, it } from 'vitest'

import { mockBlender, poolFor, rejection } from './helpers.mjs'

describe('metrics', () => {
  it('count requests, outcomes by code, waits, connects and aborts', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 1 })
    await Promise.all(Array.from({ length: 5 }, (_, i) => pool.execute('sleep', { ms: 5, i })))
    mock.setFault('garbage')
    await rejection(pool.execute('echo'))
    await rejection(pool.execute('echo', {}, { signal: AbortSignal.abort() }))
    const m = pool.getMetrics()
    // All five queue (the first waits for the connect), the sixth finds the idle connection.
    expect(m).toMatchObject({ requests: 6, successes: 5, connects: 1, connectFailures: 0, waits: 5, timeouts: 0 })
    expect(m.failures.ERR_INVALID_RESPONSE).toBe(1)
    expect(Object.values(m.failures).reduce((a, b) => a + b, 0)).toBe(1)
    expect(m.aborts).toBe(0) // aborted before the call: never submitted
    expect(m.executeLatency.count).toBe(6)
    expect(m.waitLatency.count).toBe(5)
    // Most queued calls waited for at least one 5 ms sleep.
    expect(m.waitLatency.p50).toBeGreaterThanOrEqual(4)
    expect(m.executeLatency.p99).toBeGreaterThanOrEqual(m.executeLatency.p50)
  })

  it('count aborts in flight and timeouts', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { socketTimeout: 100 })
    const controller = new AbortController()
    const call = pool.execute('sleep', { ms: 300 }, { signal: controller.signal })
    await mock.waitFor((m) => m.requests === 1)
    controller.abort()
    await rejection(call)
    mock.setFault('no-reply')
    await rejection(pool.execute('echo'))
    const m = pool.getMetrics()
    expect(m).toMatchObject({ aborts: 1, timeouts: 1 })
    expect(m.failures).toMatchObject({ ABORT_ERR: 1, ERR_RESPONSE_TIMEOUT: 1 })
  })

  it('export the same figures in Prometheus text format', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    for (let i = 0; i < 3; i++) await pool.execute('echo', { i })
    const text = pool.metricsText()
    const samples = new Map(
      text
        .split('\n')
        .filter((line) => line && !line.startsWith('#'))
        .map((line) => {
          const at = line.lastIndexOf(' ')
          return [line.slice(0, at), Number(line.slice(at + 1))]
        }),
    )
    expect(samples.get('blender_mcp_pool_requests_total')).toBe(3)
    expect(samples.get('blender_mcp_pool_successes_total')).toBe(3)
    expect(samples.get('blender_mcp_pool_failures_total{code="ERR_CONNECT"}')).toBe(0)
    expect(samples.get('blender_mcp_pool_execute_seconds_count')).toBe(3)
    expect(samples.get('blender_mcp_pool_execute_seconds{quantile="0.5"}')).toBeGreaterThan(0)
    for (const value of samples.values()) expect(Number.isFinite(value)).toBe(true)
    expect(text).toMatch(/^# TYPE blender_mcp_pool_execute_seconds summary$/m)
  })
})
