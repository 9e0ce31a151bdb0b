// One contender's run of one workload, in a process of its own (so CPU and peak RSS are its own).
// Started by bench/run.mjs as `node [--import tsx] bench/contender.mjs '<spec JSON>'`; prints one
// line of JSON on stdout: ops/s, p50/p99 latency (µs), event-loop utilisation over the timed run,
// main-thread and whole-process CPU per op (µs), peak RSS and RSS before the first call (KB).
//
// spec: { contender: 'native'|'original'|'raw', workload, host, port, ops, warmup, baseline }
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { RawClient } from './lib/raw-client.mjs'
import { mainThreadCpuUs, percentile, processCpuUs } from './lib/measure.mjs'
import { SHAPES, requestFor } from './lib/workloads.mjs'

/** The `ConnectionPool` class of the native contenders (this checkout, or BENCH_REF_DIR's). */
async function nativePool(contender) {
  const entry = contender === 'native' ? '../index.mjs' : pathToFileURL(`${process.env.BENCH_REF_DIR}/index.mjs`).href
  return (await import(entry)).ConnectionPool
}

/** Opens the contender's client: `{ call(type, params): Promise<reply>, close(): Promise }`. */
async function openClient(spec) {
  const { contender, workload, host, port } = spec
  switch (contender) {
    case 'native':
    case 'native-ref': {
      const ConnectionPool = await nativePool(contender)
      const pool = new ConnectionPool({ host, port, maxConnections: workload.connections, minConnections: 1 })
      return { call: (type, params) => pool.execute(type, params), close: () => pool.shutdown() }
    }
    case 'original': {
      // The original reads BLENDER_HOST / BLENDER_PORT (set by run.mjs) through its config module.
      const { ConnectionPool } = await import(pathToFileURL(spec.baseline).href)
      const pool = new ConnectionPool({ maxConnections: workload.connections, minConnections: 1 })
      return { call: (type, params) => pool.execute(type, params), close: () => pool.shutdown() }
    }
    case 'raw': {
      const client = await RawClient.open(host, port, workload.concurrency === 1 ? 1 : workload.connections)
      return { call: (type, params) => client.call(type, params), close: async () => client.close() }
    }
    default:
      throw new Error(`unknown contender ${contender}`)
  }
}

/** `n` calls by `concurrency` callers, each awaiting its call before the next; latencies in µs. */
async function runPhase(client, request, n, concurrency) {
  const latencies = new Float64Array(n)
  let next = 0
  async function caller() {
    while (next < n) {
      const i = next++
      const start = performance.now()
      const reply = await client.call(request.type, request.params)
      latencies[i] = (performance.now() - start) * 1000
      request.check(reply)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, caller))
  return latencies
}

/** Runs the warm-up, then the timed run, and returns the figures. */
async function measure(spec) {
  const { workload, ops, warmup } = spec
  const request = requestFor(workload)
  const client = await openClient(spec)
  const rssStartKb = process.memoryUsage.rss() / 1024
  await runPhase(client, request, warmup, workload.concurrency)

  const elu0 = performance.eventLoopUtilization()
  const [cpu0, main0, t0] = [processCpuUs(), mainThreadCpuUs(), performance.now()]
  const latencies = await runPhase(client, request, ops, workload.concurrency)
  const [t1, main1, cpu1] = [performance.now(), mainThreadCpuUs(), processCpuUs()]
  const elu = performance.eventLoopUtilization(elu0).utilization

  await client.close()
  const sorted = latencies.sort()
  const seconds = (t1 - t0) / 1000
  return {
    ops,
    seconds,
    opsPerSec: ops / seconds,
    p50Us: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    elu,
    mainCpuPerOpUs: main0 === null ? null : (main1 - main0) / ops,
    procCpuPerOpUs: (cpu1 - cpu0) / ops,
    peakRssKb: process.resourceUsage().maxRSS,
    rssStartKb,
  }
}

/**
 * A fresh-pool workload: every call on a new pool (`executeRaw` or `execute`, per
 * `workload.fresh`), each followed by a bare `JSON.parse` of the same text, timed too. The
 * text is fetched once, untimed, before the first timed call.
 */
async function measureFresh(spec) {
  const { workload, host, port, ops } = spec
  const request = requestFor(workload)
  const ConnectionPool = await nativePool(spec.contender)
  const options = { host, port, maxConnections: workload.connections, minConnections: 1 }
  const rssStartKb = process.memoryUsage.rss() / 1024
  const latencies = new Float64Array(ops)
  const parses = new Float64Array(ops)
  let text = null
  let busyUs = 0
  let [cpu0, main0, t0] = [0, 0, 0]
  for (let i = -1; i < ops; i++) {
    const pool = new ConnectionPool(options)
    if (i === 0) [cpu0, main0, t0] = [processCpuUs(), mainThreadCpuUs(), performance.now()]
    const elu0 = performance.eventLoopUtilization()
    const start = performance.now()
    const reply = i < 0 || workload.fresh === 'raw' ? await pool.executeRaw(request.type, request.params) : await pool.execute(request.type, request.params)
    const took = performance.now() - start
    busyUs += performance.eventLoopUtilization(elu0).active * 1000
    await pool.shutdown()
    if (i < 0) {
      text = reply // the text every bare JSON.parse below reads
      continue
    }
    latencies[i] = took * 1000
    request.check(typeof reply === 'string' ? JSON.parse(reply) : reply)
    const parseStart = performance.now()
    const parsed = JSON.parse(text)
    parses[i] = (performance.now() - parseStart) * 1000
    request.check(parsed)
  }
  const [t1, main1, cpu1] = [performance.now(), mainThreadCpuUs(), processCpuUs()]
  const inOrder = Array.from(latencies, Math.round)
  const sorted = latencies.sort()
  const parsed = parses.sort()
  const calls = latencies.reduce((a, b) => a + b, 0)
  return {
    ops,
    seconds: (t1 - t0) / 1000,
    // Calls per second of call time alone (each call also builds and shuts down a pool).
    opsPerSec: ops / (calls / 1e6),
    p50Us: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    elu: busyUs / calls,
    // Over the whole loop: the calls, the pools' set-up and shutdown, the checks, the bare parses.
    mainCpuPerOpUs: main0 === null ? null : (main1 - main0) / ops,
    procCpuPerOpUs: (cpu1 - cpu0) / ops,
    peakRssKb: process.resourceUsage().maxRSS,
    rssStartKb,
    parseP50Us: percentile(parsed, 50),
    // The process's first big reply (nothing recycled yet, nothing warm), and every call in order.
    firstUs: inOrder[0],
    callsUs: inOrder,
  }
}

/**
 * A `shapes-*` workload: one warm pool; per round, for each shape (bench/lib/workloads.mjs
 * SHAPES), `executeRaw`, then for the structured ones `execute` and a bare `JSON.parse` of the
 * same text. Every figure is the median over the rounds of that one call (µs). `busy_*` is the
 * event loop's busy time during `execute`: main-thread time of the call, `JSON.parse` included.
 */
async function measureShapes(spec) {
  const { workload, host, port, ops, warmup } = spec
  const ConnectionPool = await nativePool(spec.contender)
  const pool = new ConnectionPool({ host, port, maxConnections: workload.connections, minConnections: 1 })
  const params = (shape) => ({ bytes: workload.bytes, shape })
  const texts = {}
  for (const shape of SHAPES) texts[shape] = await pool.executeRaw('big', params(shape))
  const rssStartKb = process.memoryUsage.rss() / 1024
  const times = {}
  const time = async (key, fn) => {
    const elu0 = performance.eventLoopUtilization()
    const start = performance.now()
    const out = await fn()
    const took = (performance.now() - start) * 1000
    ;(times[key] ??= []).push(took)
    if (key.startsWith('json_')) (times[`busy_${key.slice(5)}`] ??= []).push(performance.eventLoopUtilization(elu0).active * 1000)
    return out
  }
  const [cpu0, main0, t0] = [processCpuUs(), mainThreadCpuUs(), performance.now()]
  for (let i = -warmup; i < ops; i++) {
    for (const shape of SHAPES) {
      const raw = await time(`raw_${shape}`, () => pool.executeRaw('big', params(shape)))
      if (raw.length !== texts[shape].length) throw new Error(`${shape}: ${raw.length} characters, expected ${texts[shape].length}`)
      if (shape === 'string') continue
      checkSuccess(await time(`json_${shape}`, () => pool.execute('big', params(shape))))
      checkSuccess(await time(`parse_${shape}`, () => JSON.parse(texts[shape])))
    }
    if (i < 0) for (const key of Object.keys(times)) times[key].length = 0
  }
  const [t1, main1, cpu1] = [performance.now(), mainThreadCpuUs(), processCpuUs()]
  await pool.shutdown()
  const medians = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, percentile(Float64Array.from(v).sort(), 50)]))
  const calls = ops * (3 * SHAPES.length - 2)
  return {
    ops,
    seconds: (t1 - t0) / 1000,
    opsPerSec: calls / ((t1 - t0) / 1000),
    p50Us: medians.raw_scene,
    p99Us: NaN,
    elu: NaN,
    mainCpuPerOpUs: main0 === null ? null : (main1 - main0) / calls,
    procCpuPerOpUs: (cpu1 - cpu0) / calls,
    peakRssKb: process.resourceUsage().maxRSS,
    rssStartKb,
    ...medians,
  }
}

function checkSuccess(reply) {
  if (reply?.status !== 'success') throw new Error(`unexpected reply: ${JSON.stringify(reply).slice(0, 200)}`)
}

const spec = JSON.parse(process.argv[2])
try {
  const measureIt = spec.workload.kind === 'shapes' ? measureShapes : spec.workload.fresh ? measureFresh : measure
  const result = await measureIt(spec)
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0) // the original pool's health-check timer would keep the process alive otherwise
} catch (err) {
  console.error(`contender ${spec.contender} failed on ${spec.workload.name}:`, err)
  process.exit(1)
}
