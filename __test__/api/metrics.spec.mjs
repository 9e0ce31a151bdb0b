// getMetrics(), metricsText() and prom-client: counters, latency histograms and gauges.

import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

import { registerPoolMetrics } from '../../index.mjs'
import { mockBlender, poolFor, rejection } from '../helpers.mjs'

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

  it('quantiles never exceed the largest sample, and print without float noise', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    await pool.execute('echo', { once: true })
    const { executeLatency: l } = pool.getMetrics()
    expect(l.count).toBe(1)
    // One sample: every percentile is that sample, to the microsecond.
    expect([l.p50, l.p90, l.p99]).toEqual([l.max, l.max, l.max])
    expect(l.sumMs).toBe(l.max)
    for (const v of [l.max, l.sumMs]) expect(String(v)).toMatch(/^\d+(\.\d{1,3})?$/)
  })
})

/** Parses Prometheus text with the reference parser (Python's prometheus_client). */
function parsePrometheus(text) {
  const script = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]})
print(json.dumps(out))
`
  const run = spawnSync('python3', ['-c', script], { input: text, encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`prometheus_client rejected the exposition:\n${run.stderr}`)
  return JSON.parse(run.stdout)
}

const parser = spawnSync('python3', ['-c', 'import prometheus_client'], { encoding: 'utf8' }).status === 0
if (!parser) console.warn('prometheus_client (pip) not installed: the exposition parser tests are skipped')

describe.runIf(parser || process.env.CI)('Prometheus exposition', () => {
  it('parses with the reference parser: histograms, gauges, counters by code, every sample labelled with the pool', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { name: 'main' })
    for (let i = 0; i < 3; i++) await pool.execute('echo', { i })
    mock.setFault('garbage')
    await pool.execute('echo').catch(() => {})
    const families = new Map(parsePrometheus(pool.metricsText()).map((f) => [f.name, f]))
    // The parser strips _total from counter family names.
    const sample = (family, name, labels = {}) =>
      families
        .get(family)
        .samples.find((s) => s[0] === name && Object.entries(labels).every(([k, v]) => s[1][k] === v))?.[2]
    expect(families.get('blender_mcp_pool_requests').type).toBe('counter')
    expect(sample('blender_mcp_pool_requests', 'blender_mcp_pool_requests_total')).toBe(4)
    expect(
      sample('blender_mcp_pool_failures', 'blender_mcp_pool_failures_total', { code: 'ERR_INVALID_RESPONSE' }),
    ).toBe(1)
    const execute = families.get('blender_mcp_pool_execute_seconds')
    expect(execute.type).toBe('histogram')
    const buckets = execute.samples.filter((s) => s[0].endsWith('_bucket'))
    expect(buckets.map((s) => s[1].le)).toEqual([
      '0.0001',
      '0.00025',
      '0.0005',
      '0.001',
      '0.0025',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '0.5',
      '1',
      '2.5',
      '5',
      '10',
      '30',
      '60',
      '120',
      '300',
      '600',
      '+Inf',
    ])
    const counts = buckets.map((s) => s[2])
    expect(counts).toEqual([...counts].sort((a, b) => a - b))
    expect(counts.at(-1)).toBe(4)
    expect(sample('blender_mcp_pool_execute_seconds', 'blender_mcp_pool_execute_seconds_count')).toBe(4)
    for (const gauge of [
      'connections_open',
      'connections_idle',
      'connections_busy',
      'connections_opening',
      'requests_pending',
    ]) {
      expect(families.get(`blender_mcp_pool_${gauge}`).type, gauge).toBe('gauge')
    }
    expect(sample('blender_mcp_pool_connections_open', 'blender_mcp_pool_connections_open')).toBe(
      pool.getStats().totalConnections,
    )
    for (const f of families.values()) for (const s of f.samples) expect(s[1].pool, s[0]).toBe('main')
  })

  it('prom-client: register.metrics() includes every registered pool, told apart by name', async () => {
    const { Registry } = await import('prom-client')
    const registry = new Registry()
    const mock = await mockBlender()
    const a = poolFor(mock, { name: 'scene' })
    const b = poolFor(mock, { name: 'render' })
    registerPoolMetrics(a, registry)
    registerPoolMetrics(b, registry)
    registerPoolMetrics(a, registry)
    await a.execute('echo')
    await b.execute('echo')
    await b.execute('echo')
    const families = new Map(parsePrometheus(await registry.metrics()).map((f) => [f.name, f]))
    const successes = families.get('blender_mcp_pool_successes').samples.map((s) => [s[1].pool, s[2]])
    expect(successes).toEqual([
      ['scene', 1],
      ['render', 2],
    ])
    expect(families.get('blender_mcp_pool_wait_seconds').type).toBe('histogram')
    expect(() => registerPoolMetrics(poolFor(mock, { name: 'scene' }), registry)).toThrow(
      /a pool named "scene" is already registered/,
    )
    expect(() => registerPoolMetrics({}, registry)).toThrow(TypeError)
  })
})
