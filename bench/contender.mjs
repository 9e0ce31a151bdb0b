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
import { requestFor } from './lib/workloads.mjs'

/** Opens the contender's client: `{ call(type, params): Promise<reply>, close(): Promise }`. */
async function openClient(spec) {
  const { contender, workload, host, port } = spec
  switch (contender) {
    case 'native':
    case 'native-ref': {
      const entry = contender === 'native' ? '../index.mjs' : pathToFileURL(`${process.env.BENCH_REF_DIR}/index.mjs`).href
      const { ConnectionPool } = await import(entry)
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

const spec = JSON.parse(process.argv[2])
try {
  const result = await measure(spec)
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0) // the original pool's health-check timer would keep the process alive otherwise
} catch (err) {
  console.error(`contender ${spec.contender} failed on ${spec.workload.name}:`, err)
  process.exit(1)
}
