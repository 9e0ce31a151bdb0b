#!/usr/bin/env node
// `npm run bench`: benchmarks blender-mcp-pool against the original TypeScript pool, a raw Node
// socket (the JS floor) and a pure-Rust client (the floor without JS), on a fast mock Blender.
//
// The mock server (bench/native, `mock-server`) is started once. Then, for each workload and each
// round, every contender runs in a fresh child process of its own, interleaved (A B C D, A B C D…),
// so that CPU time and peak RSS are the contender's alone and slow drifts of the machine hit all
// of them alike. Figures are medians over rounds. Prints a markdown report, writes
// bench/results.json, and with --write also bench/RESULTS.md. See bench/README.md.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { median } from './lib/measure.mjs'
import { checkTargets, EXTRA_FIGURES, FIGURES, reportMarkdown, resultsFile } from './lib/report.mjs'
import { CONTENDERS, MB, SHAPE_FIGURES, SMALL_PARAMS, WORKLOADS, callCounts, runsWorkload } from './lib/workloads.mjs'

const BENCH = fileURLToPath(new URL('.', import.meta.url))
const ROOT = resolve(BENCH, '..')
const HOST = '127.0.0.1'
// BENCH_NODE: a JSON array, the command that runs the JS contenders' node instead of this one
// (scripts/platforms/bench-under-wine.sh: node.exe under wine).
const NODE = process.env.BENCH_NODE ? JSON.parse(process.env.BENCH_NODE) : [process.execPath]

const USAGE = `usage: node bench/run.mjs [options]
  --short                  few ops, 1 round (CI smoke test; no thresholds)
  --rounds N               rounds per workload (default 3, or 1 with --short)
  --baseline PATH          the original pool's connection-pool.ts (contender "original")
  --only LIST              workloads, comma-separated: ${WORKLOADS.map((w) => w.name).join(',')}
  --contenders LIST        contenders, comma-separated: ${CONTENDERS.map((c) => c.id).join(',')}
                           (native-ref: the pool built in the checkout BENCH_REF_DIR, to
                           compare two commits side by side; only when listed)
  --skip-baseline-above S  skip the original on workloads bigger than S (e.g. 20MB; "none");
                           default: none, or 20MB with --short
  --timeout SECONDS        longest one contender may run one workload (default 60)
  --pin MODE               CPU placement (taskset): split = server on the last CPU, contenders
                           on the others (default); same = all on the last CPU; off = the
                           scheduler decides
  --json PATH              where to write the JSON results (default bench/results.json)
  --write                  also rewrite bench/RESULTS.md with this run
  --help`

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      short: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      baseline: { type: 'string' },
      only: { type: 'string' },
      contenders: { type: 'string' },
      'skip-baseline-above': { type: 'string' },
      timeout: { type: 'string', default: '60' },
      pin: { type: 'string', default: 'split' },
      json: { type: 'string', default: join(BENCH, 'results.json') },
      write: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const rounds = Number(values.rounds ?? (values.short ? 1 : 3))
  const timeoutS = Number(values.timeout)
  if (!Number.isInteger(rounds) || rounds < 1) usageError(`--rounds must be a whole number ≥ 1`)
  if (!(timeoutS > 0)) usageError(`--timeout must be a positive number of seconds`)
  if (!['split', 'same', 'off'].includes(values.pin)) usageError(`--pin must be split, same or off`)
  return {
    short: values.short,
    rounds,
    timeoutS,
    pin: values.pin,
    baseline: resolveBaseline(values.baseline),
    workloads: pickByName(WORKLOADS, values.only, (w) => w.name, '--only'),
    contenders: checkReference(pickByName(CONTENDERS, values.contenders, (c) => c.id, '--contenders')),
    skipBaselineAbove: parseSize(values['skip-baseline-above'] ?? (values.short ? '20MB' : 'none')),
    jsonPath: resolve(values.json),
    write: values.write,
  }
}

function usageError(message) {
  console.error(`${message}\n${USAGE}`)
  process.exit(2)
}

/** The items named in a comma-separated list (all of them when the list is absent). */
function pickByName(items, list, nameOf, flag) {
  if (!list) return items.filter((i) => !i.optIn)
  const names = list.split(',').map((s) => s.trim()).filter(Boolean)
  const unknown = names.filter((n) => !items.some((i) => nameOf(i) === n))
  if (unknown.length) usageError(`${flag}: unknown ${unknown.join(', ')}`)
  return items.filter((i) => names.includes(nameOf(i)))
}

/** `native-ref` needs BENCH_REF_DIR: a checkout of this repository, built. */
function checkReference(contenders) {
  if (!contenders.some((c) => c.id === 'native-ref')) return contenders
  const dir = process.env.BENCH_REF_DIR
  if (!dir || !existsSync(join(dir, 'index.mjs'))) usageError('--contenders native-ref: set BENCH_REF_DIR to a built checkout of this repository')
  return contenders
}

/** "20MB" → 20e6 bytes; "none" → Infinity. */
function parseSize(text) {
  if (text === 'none') return Infinity
  const m = /^(\d+(?:\.\d+)?)\s*(MB|KB|B)?$/i.exec(text)
  if (!m) usageError(`--skip-baseline-above: expected a size like 20MB, or none; got ${text}`)
  return Number(m[1]) * { mb: MB, kb: 1000, b: 1 }[(m[2] ?? 'B').toLowerCase()]
}

/** The baseline path (relative to the repo root, as npm scripts run there), or null if missing. */
function resolveBaseline(path) {
  if (!path) return null
  const full = resolve(ROOT, path)
  if (existsSync(full)) return full
  console.error(`note: baseline ${path} not found (${full}); the original pool will not run`)
  return null
}

// ---------------------------------------------------------------------------------------------
// CPU placement. On a small VM a reply's round trip costs ~10 µs when client and server share a
// CPU and ~70 µs when a wake-up has to cross to the other one, so unpinned runs flip between the
// two at random. Pinning makes every contender meet the same placement.

/** The CPUs this process may run on (from /proc/self/status), or [] when unknown. */
function allowedCpus() {
  try {
    const list = /^Cpus_allowed_list:\s*(.*)$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]
    return list.split(',').flatMap((part) => {
      const [a, b = a] = part.split('-').map(Number)
      return Array.from({ length: b - a + 1 }, (_, i) => a + i)
    })
  } catch {
    return []
  }
}

/** { server, clients } CPU lists for taskset, or null for no pinning. */
function cpuPlan(mode) {
  if (mode === 'off') return null
  const cpus = allowedCpus()
  if (cpus.length < 2 || tryExec('taskset', ['-V']) === 'unknown') {
    console.error(`note: --pin ${mode} needs taskset and 2 CPUs or more; running unpinned`)
    return null
  }
  const server = String(cpus.at(-1))
  return { mode, server, clients: mode === 'same' ? server : cpus.slice(0, -1).join(',') }
}

/** `cmd` run under `taskset -c cpus` (taskset execs it: same pid), or as is. */
function pinned(cmd, cpus) {
  return cpus ? { file: 'taskset', args: ['-c', cpus, cmd.file, ...cmd.args] } : cmd
}

function describePlan(plan) {
  return plan ? `${plan.mode}: mock server on CPU ${plan.server}, contenders on CPU ${plan.clients}` : 'off (unpinned)'
}

// ---------------------------------------------------------------------------------------------
// The native side: build the bench binaries when needed, start the mock server.

function targetDir() {
  return process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target')
}

function binary(name) {
  return join(targetDir(), 'release', name)
}

function newestMtime(dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

/**
 * Builds `mock-server` and `rust-client` when missing or older than their sources: their crate,
 * the mock Blender they serve with (`mock-server/`), and the core whose scanner the client reads with.
 */
function ensureNativeBinaries() {
  const sources = Math.max(...[join(BENCH, 'native'), join(ROOT, 'mock-server'), join(ROOT, 'core', 'src')].map(newestMtime))
  const fresh = ['mock-server', 'rust-client'].every((b) => existsSync(binary(b)) && statSync(binary(b)).mtimeMs >= sources)
  if (fresh) return
  console.error('building the benchmark binaries (cargo build --release -p blender-mcp-pool-bench)')
  execFileSync('cargo', ['build', '--release', '-p', 'blender-mcp-pool-bench'], { cwd: ROOT, stdio: ['ignore', 2, 2] })
}

/** Starts the mock server on a free port; resolves to { port, child }. */
function startMockServer(plan) {
  const { file, args } = pinned({ file: binary('mock-server'), args: ['--port', '0'] }, plan?.server)
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolvePort, reject) => {
    const lines = createInterface({ input: child.stdout })
    lines.once('line', (line) => {
      const m = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line.trim())
      if (m) resolvePort({ port: Number(m[1]), child })
      else reject(new Error(`mock-server said ${JSON.stringify(line)}`))
    })
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`mock-server exited (${code}) before listening`)))
  })
}

// ---------------------------------------------------------------------------------------------
// One contender, one workload, one round: a child process, bounded in time.

/** The command line of a contender's child process. */
function contenderCommand(contender, workload, counts, ctx) {
  if (contender === 'rust') {
    const kind = { echo: ['--kind', 'echo', '--params', JSON.stringify(SMALL_PARAMS)], big: ['--kind', 'big'], exec: ['--kind', 'exec'] }
    return {
      file: binary('rust-client'),
      args: [
        '--port', String(ctx.port), '--host', HOST, ...kind[workload.kind],
        '--bytes', String(workload.bytes ?? 0), '--ops', String(counts.ops), '--warmup', String(counts.warmup),
        ...(workload.paceMs ? ['--pace-ms', String(workload.paceMs)] : []),
        '--concurrency', String(workload.concurrency), '--connections', String(workload.connections),
      ],
    }
  }
  const spec = { contender, workload, host: HOST, port: ctx.port, baseline: ctx.baseline, ...counts }
  const loader = contender === 'original' ? ['--import', 'tsx'] : []
  return { file: NODE[0], args: [...NODE.slice(1), ...loader, join(BENCH, 'contender.mjs'), JSON.stringify(spec)] }
}

/** Runs a child; resolves to { status: 'ok', result } or { status: 'timeout'|'error', detail }. */
function runChild({ file, args }, ctx) {
  return new Promise((done) => {
    const env = { ...process.env, BLENDER_HOST: HOST, BLENDER_PORT: String(ctx.port), LOG_LEVEL: 'warn' }
    const child = spawn(file, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, ctx.timeoutS * 1000)
    child.once('error', (err) => {
      clearTimeout(timer)
      done({ status: 'error', detail: err.message })
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      if (timedOut) return done({ status: 'timeout', detail: `killed after ${ctx.timeoutS} s` })
      const line = stdout.trim().split('\n').pop()
      if (code === 0 && line) {
        try {
          return done({ status: 'ok', result: JSON.parse(line) })
        } catch {}
      }
      done({ status: 'error', detail: `exit ${code}: ${stderr.trim().split('\n').slice(-5).join(' | ')}` })
    })
  })
}

/** The skip reason of a contender a workload is not meant for (no row, no note). */
const NOT_FOR_IT = 'not for this workload'

/** Why `contender` does not run `workload` in this run, or null when it does. */
function skipReason(contender, workload, opts) {
  if (!runsWorkload(workload, contender)) return NOT_FOR_IT
  if (contender !== 'original') return null
  if (!opts.baseline) return 'no baseline'
  if ((workload.bytes ?? 0) > opts.skipBaselineAbove) return 'skipped'
  return null
}

// ---------------------------------------------------------------------------------------------
// The run: every workload, every round, every contender; then medians and ratios.

async function runAll(opts, ctx) {
  const runs = [] // { workload, contender, round, status, result?, detail? }
  for (const workload of opts.workloads) {
    for (let round = 1; round <= opts.rounds; round++) {
      for (const { id, label } of opts.contenders) {
        const skip = skipReason(id, workload, opts)
        if (skip) {
          if (round === 1 && skip !== NOT_FOR_IT) console.error(`[${workload.name}] ${label}: ${skip}`)
          continue
        }
        const counts = callCounts(workload, id, opts.short)
        const outcome = await runChild(pinned(contenderCommand(id, workload, counts, ctx), ctx.plan?.clients), ctx)
        runs.push({ workload: workload.name, contender: id, round, ...outcome })
        console.error(`[${workload.name} ${round}/${opts.rounds}] ${label}: ${progressNote(outcome)}`)
      }
    }
  }
  return runs
}

function progressNote(outcome) {
  if (outcome.status !== 'ok') return `${outcome.status} (${outcome.detail})`
  const r = outcome.result
  return `${r.opsPerSec.toFixed(1)} ops/s, p50 ${(r.p50Us / 1000).toFixed(3)} ms`
}

/** One row per (workload, contender): medians over the rounds that succeeded, ratios. */
function aggregate(runs, opts) {
  const rows = []
  for (const workload of opts.workloads) {
    for (const { id, label } of opts.contenders) {
      if (skipReason(id, workload, opts) === NOT_FOR_IT) continue
      const mine = runs.filter((r) => r.workload === workload.name && r.contender === id)
      const ok = mine.filter((r) => r.status === 'ok').map((r) => ({ ...r.result, rssGrowthKb: r.result.peakRssKb - r.result.rssStartKb }))
      const status = mine.length === 0 ? skipReason(id, workload, opts) ?? 'not run' : ok.length ? 'ok' : mine[0].status
      const keys = [...FIGURES, ...EXTRA_FIGURES, ...SHAPE_FIGURES].map((f) => f.key)
      const medians = ok.length ? Object.fromEntries(keys.map((k) => [k, median(ok.map((r) => r[k]))])) : null
      if (medians) medians.ops = ok[0].ops
      rows.push({ workload: workload.name, contender: id, label, status, rounds: mine.length, okRounds: ok.length, median: medians })
    }
  }
  for (const row of rows) {
    const original = rows.find((r) => r.workload === row.workload && r.contender === 'original')?.median
    if (!original || !row.median) continue
    row.vsOriginal = Object.fromEntries(FIGURES.map((f) => [f.key, ratioOf(row.median[f.key], original[f.key])]))
  }
  return rows
}

function ratioOf(a, b) {
  return typeof a === 'number' && typeof b === 'number' && b !== 0 ? a / b : null
}

// ---------------------------------------------------------------------------------------------
// The machine, for RESULTS.md.

function tryExec(file, args) {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return 'unknown'
  }
}

function machineInfo(opts) {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : ''
  return {
    uname: tryExec('uname', ['-srm']),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGB: (os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    rustc: tryExec('rustc', ['-V']),
    command: ['node', 'bench/run.mjs', ...process.argv.slice(2)].join(' '),
    rounds: opts.rounds,
    short: opts.short,
    timeoutS: opts.timeoutS,
  }
}

async function main() {
  const opts = parseOptions(process.argv.slice(2))
  ensureNativeBinaries()
  const plan = cpuPlan(opts.pin)
  const server = await startMockServer(plan)
  const stop = () => server.child.kill()
  process.once('SIGINT', () => (stop(), process.exit(130)))
  const ctx = { port: server.port, baseline: opts.baseline, timeoutS: opts.timeoutS, plan }
  const meta = {
    date: new Date().toISOString(),
    ...machineInfo(opts),
    pinning: describePlan(plan),
    loadBefore: os.loadavg()[0].toFixed(2),
  }
  console.error(`mock server on ${HOST}:${server.port}; ${opts.rounds} round(s); ${opts.short ? 'short' : 'full'} run; pinning ${meta.pinning}`)
  try {
    const runs = await runAll(opts, ctx)
    meta.loadAfter = os.loadavg()[0].toFixed(2)
    const rows = aggregate(runs, opts)
    const targets = checkTargets(rows)
    const report = reportMarkdown(rows, targets, { short: opts.short })
    process.stdout.write(report)
    writeFileSync(opts.jsonPath, JSON.stringify({ meta, rows, targets, runs }, null, 2) + '\n')
    console.error(`results: ${opts.jsonPath}`)
    if (opts.write) {
      writeFileSync(join(BENCH, 'RESULTS.md'), resultsFile(meta, report))
      console.error(`wrote ${join(BENCH, 'RESULTS.md')}`)
    }
  } finally {
    stop()
  }
}

await main()
