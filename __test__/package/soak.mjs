// Soak test: many echo requests through one pool against the fault-injecting mock Blender,
// started as a child process, checking that nothing leaks, nothing is lost and no reply goes to
// the wrong caller.
//
//   npm run soak          1,000,000 requests, concurrency 16, fault rate 0.01
//   npm run soak:short    20,000 requests (same checks)
//   node --expose-gc --min-semi-space-size=16 --max-semi-space-size=16 __test__/package/soak.mjs \
//        [--requests N] [--concurrency C] [--fault-rate R] [--seed S]
//
// Why the semi-space flags: at this allocation rate V8 grows its young generation from 1 MB to
// 16 MB semi-spaces during the first ~100,000 requests, some 16 MB of RSS that no GC gives back.
// That is heap sizing, not a leak, and it would land after the 5% warm-up of a 1,000,000-request
// run. Fixing the young generation at its usual maximum from the start keeps the RSS check about
// leaks: JavaScript objects kept alive (old space) and native memory both still show. The
// summary prints the JS heap too, so a growth can be told apart.
//
// Invariants (each one a check; the last line is "N passed, M failed"):
//   - no unhandled rejection or uncaught exception;
//   - every request settles; every successful reply carries its own request's id;
//   - failures have expected codes only (the fast faults give ERR_CONNECTION_CLOSED and
//     ERR_INVALID_RESPONSE; `delay` and `two-documents` are answered);
//   - the server received every request exactly once, and the failures are exactly the requests
//     it answered with a fault that cannot succeed;
//   - RSS grows by less than 20 MB from after the warm-up (first 5% of requests) to the end
//     (sampled after a full GC when node runs with --expose-gc);
//   - after pool.shutdown() this process has no more open file descriptors than before the pool
//     was created, and the pool's gauges are all zero; the pool counted as many valid replies
//     as callers received.
// Exits non-zero when any check fails.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

// The pool logs a warning for every bad reply the faults provoke on purpose; only errors here
// (LOG_LEVEL=warn to see them). Read when the addon loads, hence the dynamic import.
process.env.LOG_LEVEL ??= 'error'
const { ConnectionPool } = await import('../../index.mjs')

const USAGE =
  'usage: node --expose-gc [--min-semi-space-size=16 --max-semi-space-size=16] __test__/package/soak.mjs [--requests N] [--concurrency C] [--fault-rate R] [--seed S]'
const RSS_LIMIT_MB = 20
const MAX_CONNECTIONS = 5
const SOCKET_TIMEOUT = 300
/** Faults whose request must fail (the mock's FAST_FAULTS minus `delay` and `two-documents`). */
const FATAL_FAULTS = ['close', 'garbage', 'non-object', 'bad-status', 'half-reply', 'reset']
const EXPECTED_CODES = new Set(['ERR_CONNECTION_CLOSED', 'ERR_INVALID_RESPONSE'])

function parseArgs(argv) {
  const opts = { requests: 1_000_000, concurrency: 16, faultRate: 0.01, seed: 1 }
  const names = {
    '--requests': 'requests',
    '--concurrency': 'concurrency',
    '--fault-rate': 'faultRate',
    '--seed': 'seed',
  }
  for (let i = 0; i < argv.length; i++) {
    const eq = argv[i].indexOf('=')
    const flag = eq < 0 ? argv[i] : argv[i].slice(0, eq)
    const value = eq < 0 ? argv[++i] : argv[i].slice(eq + 1)
    if (!(flag in names) || value === undefined || value.trim() === '') {
      console.error(USAGE)
      process.exit(2)
    }
    opts[names[flag]] = Number(value)
  }
  const bad = (what) => {
    console.error(`invalid ${what}\n${USAGE}`)
    process.exit(2)
  }
  if (!Number.isSafeInteger(opts.requests) || opts.requests < 1) bad(`--requests: ${opts.requests}`)
  if (!Number.isSafeInteger(opts.concurrency) || opts.concurrency < 1) bad(`--concurrency: ${opts.concurrency}`)
  if (!(opts.faultRate >= 0 && opts.faultRate <= 1)) bad(`--fault-rate (0..1): ${opts.faultRate}`)
  if (!Number.isSafeInteger(opts.seed)) bad(`--seed (integer): ${opts.seed}`)
  return opts
}

const opts = parseArgs(process.argv.slice(2))

// ---- the checks ----
const results = []
function check(name, ok, detail) {
  results.push({ name, ok: Boolean(ok), detail })
}

const unhandled = []
process.on('unhandledRejection', (reason) => {
  unhandled.push(`unhandledRejection: ${reason?.stack ?? reason}`)
})
process.on('uncaughtException', (err) => {
  unhandled.push(`uncaughtException: ${err?.stack ?? err}`)
})

const hasGc = typeof globalThis.gc === 'function'
function rssMb() {
  if (hasGc) {
    globalThis.gc()
    globalThis.gc()
  }
  return process.memoryUsage.rss() / (1024 * 1024)
}

function openFds() {
  return readdirSync('/proc/self/fd').length
}

/** Starts the mock as a child process; resolves once it listens. */
async function startMock() {
  const script = fileURLToPath(new URL('../../mock/blender-mock.mjs', import.meta.url))
  const child = spawn(
    process.execPath,
    [script, '--port', '0', '--fault-rate', String(opts.faultRate), '--seed', String(opts.seed)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  // stderr: the listening line comes first, then SIGUSR2 snapshots (one JSON line each) are
  // kept; anything else is passed through.
  const snapshots = []
  const lines = createInterface({ input: child.stderr })
  const first = once(lines, 'line')
  lines.on('line', (line) => {
    if (line.startsWith('mock-blender listening on ')) return
    if (line.startsWith('{')) {
      try {
        snapshots.push(JSON.parse(line))
        return
      } catch {
        /* not a snapshot */
      }
    }
    process.stderr.write(`[mock] ${line}\n`)
  })
  const exited = once(child, 'exit').then(([code, signal]) => {
    throw new Error(`mock Blender exited before listening (code ${code}, signal ${signal})`)
  })
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('mock Blender did not start within 10 s')), 10_000)
  })
  try {
    const [line] = await Promise.race([first, exited, timeout])
    const match = /listening on (.+):(\d+)$/.exec(line)
    if (!match) throw new Error(`unexpected first line from mock Blender: ${line}`)
    return { child, host: match[1], port: Number(match[2]), snapshots }
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  } finally {
    clearTimeout(timer)
    exited.catch(() => {})
  }
}

/** Asks the mock for its counters (SIGUSR2: one JSON line on its stderr). */
async function mockSnapshot(mock) {
  const before = mock.snapshots.length
  mock.child.kill('SIGUSR2')
  const deadline = Date.now() + 5000
  while (mock.snapshots.length === before) {
    if (Date.now() > deadline) throw new Error('mock Blender did not answer SIGUSR2 within 5 s')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return mock.snapshots.at(-1)
}

// ---- the run ----
const mock = await startMock()
let mockExit = null
const mockExited = once(mock.child, 'exit').then(([code, signal]) => {
  mockExit = { code, signal }
  return [code, signal]
})
const config = { host: mock.host, port: mock.port, maxConnections: MAX_CONNECTIONS, socketTimeout: SOCKET_TIMEOUT }
console.log(
  `soak: ${opts.requests} requests, concurrency ${opts.concurrency}, fault rate ${opts.faultRate}, seed ${opts.seed}, ` +
    `mock pid ${mock.child.pid} at ${mock.host}:${mock.port}, gc ${hasGc ? 'exposed' : 'NOT exposed (run node with --expose-gc)'}`,
)

// The process-wide I/O runtime of the addon starts with the first pool and lives for the
// process (its epoll and wake-up descriptors are not the pool's): a throw-away pool starts it
// before the baseline is taken.
const fdsBeforeRuntime = openFds()
let warmupFailed = 0
{
  const warm = new ConnectionPool({ ...config, minConnections: 0 })
  await warm.execute('get_scene_info').catch((err) => {
    if (EXPECTED_CODES.has(err.code))
      warmupFailed = 1 // a fault drawn for the server's request 0
    else console.error(`warm-up request failed: ${err.code}: ${err.message}`)
  })
  await warm.shutdown()
}
const warmupRequests = 1
const fdsBefore = openFds()

const pool = new ConnectionPool(config)
const started = performance.now()
const warmupAt = Math.max(1, Math.floor(opts.requests * 0.05))
const failures = {}
const unexpected = {}
let ok = 0
let failed = 0
let mismatches = 0
const mismatchSamples = []
let completed = 0
let next = 0
let rssStart = null
let heapStart = null
let tWarm = null
let lastProgress = 0

async function worker() {
  // A mock that died would make every later request fail slowly (connects back off): stop.
  while (next < opts.requests && mockExit === null) {
    const id = next++
    try {
      const reply = await pool.execute('echo', { id })
      const result = reply?.result
      if (
        reply?.status === 'success' &&
        result !== null &&
        typeof result === 'object' &&
        result.id === id &&
        Object.keys(result).length === 1
      ) {
        ok++
      } else {
        mismatches++
        if (mismatchSamples.length < 5) mismatchSamples.push(`id ${id} got ${JSON.stringify(reply).slice(0, 120)}`)
      }
    } catch (err) {
      failed++
      const code = err?.code ?? String(err)
      failures[code] = (failures[code] ?? 0) + 1
      if (!EXPECTED_CODES.has(code)) {
        unexpected[code] = (unexpected[code] ?? 0) + 1
        if ((unexpected[code] ?? 0) <= 3) console.error(`unexpected failure of request ${id}: ${code}: ${err?.message}`)
      }
    }
    completed++
    if (completed === warmupAt) {
      rssStart = rssMb()
      heapStart = process.memoryUsage()
      tWarm = performance.now()
    }
    if (completed - lastProgress >= opts.requests / 10 && completed < opts.requests) {
      lastProgress = completed
      const s = (performance.now() - started) / 1000
      const rss = rssMb()
      const { heapUsed, heapTotal, external } = process.memoryUsage()
      const m = (n) => (n / 1048576).toFixed(1)
      console.error(
        `  ${completed} / ${opts.requests} (${Math.round(completed / s)} req/s, rss ${rss.toFixed(1)} MB, ` +
          `heap ${m(heapUsed)} of ${m(heapTotal)} MB, external ${m(external)} MB)`,
      )
    }
  }
}

await Promise.all(Array.from({ length: opts.concurrency }, worker))
const rssEnd = rssMb()
const heapEnd = process.memoryUsage()
const durationS = (performance.now() - started) / 1000
const statsBefore = pool.getStats()

await pool.shutdown()
const fdsAfter = openFds()
const statsAfter = pool.getStats()
// Not a check: if descriptors are still open, say whether they close a little later.
let fdsLater = fdsAfter
for (let i = 0; i < 100 && fdsLater > fdsBefore; i++) {
  await new Promise((resolve) => setTimeout(resolve, 20))
  fdsLater = openFds()
}

let snap = null
try {
  snap = await mockSnapshot(mock)
} catch (err) {
  console.error(err.message)
}
const diedEarly = mockExit
if (diedEarly)
  console.error(
    `the mock Blender exited during the run (code ${diedEarly.code}, signal ${diedEarly.signal}): run stopped`,
  )
else mock.child.kill('SIGTERM')
const [exitCode, exitSignal] = await mockExited

// ---- verdict ----
const fatalInjected = snap ? FATAL_FAULTS.reduce((n, f) => n + (snap.faultsInjected[f] ?? 0), 0) : NaN
const rssGrowth = rssStart === null ? NaN : rssEnd - rssStart

check('no unhandled rejection or uncaught exception', unhandled.length === 0, unhandled.slice(0, 3).join('\n'))
check(
  'every request settled',
  completed === opts.requests && ok + failed + mismatches === opts.requests,
  `${completed} settled of ${opts.requests}`,
)
check(
  'every successful reply carries its own request id',
  mismatches === 0,
  `${mismatches} mismatches${mismatchSamples.length > 0 ? `: ${mismatchSamples.join('; ')}` : ''}`,
)
check(
  'failures have expected codes only (ERR_CONNECTION_CLOSED, ERR_INVALID_RESPONSE)',
  Object.keys(unexpected).length === 0,
  JSON.stringify(unexpected),
)
check(
  'the server received every request exactly once',
  snap !== null && snap.requests === opts.requests + warmupRequests,
  snap
    ? `server received ${snap.requests}, sent ${opts.requests} (+${warmupRequests} warm-up)`
    : 'no snapshot from the mock',
)
check(
  'failures are exactly the requests the server answered with a fatal fault',
  failed + warmupFailed === fatalInjected,
  `${failed} failed (+${warmupFailed} warm-up), ${fatalInjected} fatal faults injected`,
)
check(
  `RSS growth after warm-up < ${RSS_LIMIT_MB} MB`,
  rssGrowth < RSS_LIMIT_MB,
  `${rssGrowth.toFixed(1)} MB${hasGc ? '' : ' (no --expose-gc: sampled without GC)'}`,
)
check(
  'open file descriptors after shutdown() back to the baseline',
  fdsAfter <= fdsBefore,
  `before ${fdsBefore}, after ${fdsAfter}${fdsAfter > fdsBefore ? `, ${fdsLater} after waiting up to 2 s` : ''}`,
)
const gauges = ['totalConnections', 'activeConnections', 'idleConnections', 'pendingRequests', 'openingConnections']
check(
  'pool gauges all zero after shutdown()',
  gauges.every((k) => statsAfter[k] === 0),
  JSON.stringify(Object.fromEntries(gauges.map((k) => [k, statsAfter[k]]))),
)
check(
  'stats.totalRequests equals the successful replies',
  statsAfter.totalRequests === ok + mismatches,
  `totalRequests ${statsAfter.totalRequests}, ok ${ok}`,
)
check(
  'stats.failedRequests equals the failed requests',
  statsAfter.failedRequests === failed,
  `failedRequests ${statsAfter.failedRequests}, failed ${failed}`,
)
check(
  'the mock stayed up and exited cleanly when asked',
  !diedEarly && exitCode === 0,
  `${diedEarly ? 'died during the run; ' : ''}code ${exitCode}, signal ${exitSignal}`,
)

const fmt = (n) => n.toLocaleString('en-US')
console.log('')
console.log(
  `requests      ${fmt(opts.requests)} (concurrency ${opts.concurrency}, maxConnections ${MAX_CONNECTIONS}, socketTimeout ${SOCKET_TIMEOUT} ms)`,
)
console.log(`ok            ${fmt(ok)}`)
console.log(`failures      ${fmt(failed)} ${JSON.stringify(failures)}`)
if (snap) {
  console.log(
    `faults        ${JSON.stringify(snap.faultsInjected)} (server: ${fmt(snap.requests)} requests, ` +
      `${fmt(snap.connectionsOpened)} connections, at most ${snap.maxOpenConnections} open by its own count)`,
  )
}
console.log(`throughput    ${fmt(Math.round(completed / durationS))} req/s`)
console.log(
  `duration      ${durationS.toFixed(1)} s (warm-up ${tWarm === null ? '?' : ((tWarm - started) / 1000).toFixed(1)} s)`,
)
console.log(
  `rss           start ${rssStart?.toFixed(1) ?? '?'} MB (after ${fmt(warmupAt)} requests), end ${rssEnd.toFixed(1)} MB, growth ${rssGrowth.toFixed(1)} MB`,
)
const mb = (n) => (n / 1048576).toFixed(1)
console.log(
  `js heap       used ${heapStart ? mb(heapStart.heapUsed) : '?'} -> ${mb(heapEnd.heapUsed)} MB, ` +
    `total ${heapStart ? mb(heapStart.heapTotal) : '?'} -> ${mb(heapEnd.heapTotal)} MB, external ${heapStart ? mb(heapStart.external) : '?'} -> ${mb(heapEnd.external)} MB`,
)
console.log(
  `fds           before pool ${fdsBefore}, after shutdown ${fdsAfter} (before the addon's runtime started: ${fdsBeforeRuntime})`,
)
console.log(`pool stats    before shutdown ${JSON.stringify(statsBefore)}`)
console.log(`seed          ${opts.seed}`)
console.log('')
for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.name}${r.detail ? `: ${r.detail}` : ''}`)
const passed = results.filter((r) => r.ok).length
const failedChecks = results.length - passed
console.log(`${passed} passed, ${failedChecks} failed`)
process.exitCode = failedChecks === 0 ? 0 : 1
