// Turns the benchmark's aggregated results into markdown: the main table, the table of ratios to
// the original pool, the issue's targets checked against this run, and bench/RESULTS.md.
import { MB, SHAPES, WORKLOADS } from './workloads.mjs'

/** The figures reported for each (workload, contender), in table order. */
export const FIGURES = [
  { key: 'opsPerSec', title: 'ops/s', fmt: fmtCount },
  { key: 'p50Us', title: 'p50', fmt: fmtMicros },
  { key: 'p99Us', title: 'p99', fmt: fmtMicros },
  { key: 'elu', title: 'ELU', fmt: (v) => v.toFixed(2) },
  { key: 'mainCpuPerOpUs', title: 'main CPU/op', fmt: fmtMicros },
  { key: 'procCpuPerOpUs', title: 'proc CPU/op', fmt: fmtMicros },
  { key: 'peakRssKb', title: 'peak RSS', fmt: fmtKb },
  { key: 'rssGrowthKb', title: 'ΔRSS', fmt: fmtKb },
]

/** Figures only some workloads have (the fresh-pool ones), reported in a table of their own. */
export const EXTRA_FIGURES = [
  { key: 'parseP50Us', title: 'bare JSON.parse p50', fmt: fmtMicros },
  { key: 'firstUs', title: 'first call', fmt: fmtMicros },
]

/** The targets of issue 14 for a fresh-pool workload: its call p50 may exceed this (µs). */
function freshBudgetUs(workload, row) {
  const mb = workload.bytes / MB
  const slack = 20_000 * (mb / 20) // 20 ms for 20 MB, scaling linearly
  return workload.fresh === 'raw' ? slack : (row.median?.parseP50Us ?? NaN) + slack
}

/** The fresh-pool workloads: every call on a new pool, against its budget. */
export function freshTable(rows, workloads) {
  const fresh = workloads.filter((w) => w.fresh)
  const shown = rows.filter((r) => fresh.some((w) => w.name === r.workload))
  if (shown.length === 0) return null
  const header = ['workload', 'contender', 'call p50', 'first call', 'call max', 'bare JSON.parse p50', 'call p50 − parse p50', 'target: call p50 ≤', 'verdict']
  return table(
    header,
    shown.map((r) => {
      const w = fresh.find((w) => w.name === r.workload)
      const m = r.median
      const budget = freshBudgetUs(w, r)
      const verdict = !m ? r.status : m.p50Us <= budget ? '✅ met' : '❌ missed'
      return [
        r.workload,
        r.label + statusCell(r),
        cell(m?.p50Us, fmtMicros),
        cell(m?.firstUs, fmtMicros),
        cell(m?.p99Us, fmtMicros),
        cell(m?.parseP50Us, fmtMicros),
        w.fresh === 'raw' ? '—' : cell(m ? m.p50Us - m.parseP50Us : null, fmtMicros),
        `${w.fresh === 'raw' ? '' : 'parse + '}${fmtMicros(20_000 * (w.bytes / MB / 20))}${Number.isFinite(budget) && w.fresh !== 'raw' ? ` (${fmtMicros(budget)})` : ''}`,
        verdict,
      ]
    }),
  )
}

/**
 * The `shapes-*` workloads (issue 20): per size and contender, each shape's `executeRaw` against
 * the plain string's (target: within 1.15x at 20 MB), `execute` against a bare `JSON.parse` of
 * the same text (target: within parse + 20 ms at 20 MB), and the event loop's busy time in it.
 */
export function shapesTable(rows, workloads) {
  const shaped = workloads.filter((w) => w.kind === 'shapes')
  const shown = rows.filter((r) => shaped.some((w) => w.name === r.workload))
  if (shown.length === 0) return null
  const header = ['size', 'contender', 'shape', 'executeRaw p50', 'vs string', 'execute p50', 'bare JSON.parse p50', 'execute − parse', 'execute: event loop busy']
  const lines = []
  for (const r of shown) {
    const w = shaped.find((w) => w.name === r.workload)
    const m = r.median
    for (const shape of SHAPES) {
      const raw = m?.[`raw_${shape}`]
      const json = m?.[`json_${shape}`]
      const parse = m?.[`parse_${shape}`]
      lines.push([
        `${w.bytes / MB} MB`,
        r.label + statusCell(r),
        shape,
        cell(raw, fmtMicros),
        shape === 'string' ? '1.00×' : fmtRatio(m ? raw / m.raw_string : null),
        cell(json, fmtMicros),
        cell(parse, fmtMicros),
        cell(json - parse, fmtMicros),
        cell(m?.[`busy_${shape}`], fmtMicros),
      ])
    }
  }
  return table(header, lines)
}

/** 3 significant digits, thousands separated. */
function fmtCount(v) {
  if (v >= 1000) return Math.round(v).toLocaleString('en-US')
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)
}

/** A duration given in µs, in the unit that suits it. */
function fmtMicros(us) {
  if (us < 0) return `−${fmtMicros(-us)}`
  if (us < 1000) return `${us < 10 ? us.toFixed(1) : us.toFixed(0)} µs`
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`
  return `${(us / 1e6).toFixed(2)} s`
}

function fmtKb(kb) {
  return `${((kb * 1024) / MB).toFixed(1)} MB`
}

function fmtRatio(r) {
  if (r === null || r === undefined || !Number.isFinite(r)) return '—'
  return r >= 100 ? `${r.toFixed(0)}×` : r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`
}

function cell(value, fmt) {
  return value === null || value === undefined || !Number.isFinite(value) ? '—' : fmt(value)
}

/** What to show for a row whose contender produced no figures. */
function statusCell(row) {
  return row.status === 'ok' ? '' : ` (${row.status})`
}

function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** The main table: every figure, plus ops/s and p50 as ratios to the original. */
export function mainTable(rows) {
  const header = ['workload', 'contender', ...FIGURES.map((f) => f.title), 'ops/s vs orig', 'p50 vs orig']
  return table(
    header,
    rows.map((r) => [
      r.workload,
      r.label + statusCell(r),
      ...FIGURES.map((f) => cell(r.median?.[f.key], f.fmt)),
      fmtRatio(r.vsOriginal?.opsPerSec),
      fmtRatio(r.vsOriginal?.p50Us),
    ]),
  )
}

/** Every figure as a ratio to the original pool's, same workload, same run. */
export function ratioTable(rows) {
  const header = ['workload', 'contender', ...FIGURES.map((f) => f.title)]
  const shown = rows.filter((r) => r.contender !== 'original' && r.vsOriginal)
  if (shown.length === 0) return '(the original pool did not run: no ratios)'
  return table(header, shown.map((r) => [r.workload, r.label, ...FIGURES.map((f) => fmtRatio(r.vsOriginal[f.key]))]))
}

/**
 * The issue's targets, checked against this run's medians (information only: the benchmark never
 * fails on them). Returns [{ target, value, verdict }] with verdict 'met' | 'missed' | 'n/a'.
 */
export function checkTargets(rows) {
  const find = (workload, contender) => rows.find((r) => r.workload === workload && r.contender === contender)
  const ours = (w) => find(w, 'native')
  const ratio = (w, key) => ours(w)?.vsOriginal?.[key] ?? null
  const vsRaw = (w, key) => {
    const a = ours(w)?.median?.[key]
    const b = find(w, 'raw')?.median?.[key]
    return a && b ? a / b : null
  }
  const verdict = (value, ok) => ({ value, verdict: value === null ? 'n/a' : ok(value) ? 'met' : 'missed' })
  const rss20 = ours('reply-20MB')?.median?.rssGrowthKb
  const big50 = ours('reply-50MB')
  return [
    { target: 'c1: p50 ≤ original (ratio ≤ 1.0)', ...verdict(ratio('c1', 'p50Us'), (v) => v <= 1), fmt: fmtRatio },
    { target: 'c1 stretch: p50 within 10% of the raw Node socket', ...verdict(vsRaw('c1', 'p50Us'), (v) => v <= 1.1), fmt: fmtRatio },
    { target: 'c16: ops/s ≥ 2× original', ...verdict(ratio('c16', 'opsPerSec'), (v) => v >= 2), fmt: fmtRatio },
    { target: 'reply-20MB: ≥ 50× faster than original (ops/s)', ...verdict(ratio('reply-20MB', 'opsPerSec'), (v) => v >= 50), fmt: fmtRatio },
    { target: 'reply-20MB: ELU ≤ 0.2 (whole call, JSON.parse included, instant loopback)', ...verdict(ours('reply-20MB')?.median?.elu ?? null, (v) => v <= 0.2), fmt: (v) => v.toFixed(2) },
    { target: 'reply-20MB while it arrives (paced, ~200 ms): ELU ≤ 0.2', ...verdict(ours('reply-20MB-paced')?.median?.elu ?? null, (v) => v <= 0.2), fmt: (v) => v.toFixed(2) },
    {
      target: 'reply-20MB, one call in a fresh process: RSS growth ≤ 3× the reply (60 MB)',
      ...verdict(ours('reply-20MB-once')?.median?.rssGrowthKb ?? null, (kb) => kb * 1024 <= 3 * 20 * MB),
      fmt: fmtKb,
    },
    {
      target: 'reply-20MB, warm-up + 5 calls (uncollected garbage included): RSS growth ≤ 60 MB',
      ...verdict(rss20 ?? null, (kb) => kb * 1024 <= 3 * 20 * MB),
      fmt: fmtKb,
    },
    {
      target: 'reply-50MB: completes every round',
      ...verdict(big50 ? big50.okRounds / big50.rounds : null, (v) => v === 1),
      fmt: () => `${big50.okRounds}/${big50.rounds} rounds`,
    },
    ...WORKLOADS.filter((w) => w.fresh).map((w) => {
      const row = ours(w.name)
      const budget = row ? freshBudgetUs(w, row) : NaN
      const slack = fmtMicros(20_000 * (w.bytes / MB / 20))
      const what = w.fresh === 'raw' ? `executeRaw p50 ≤ ${slack}` : `execute p50 ≤ bare JSON.parse p50 + ${slack}`
      return {
        target: `${w.name} (issue 14, fresh pool per call): ${what}`,
        ...verdict(row?.median?.p50Us ?? null, (v) => v <= budget),
        fmt: (v) => (w.fresh === 'raw' ? fmtMicros(v) : `${fmtMicros(v)} (parse ${fmtMicros(row.median.parseP50Us)})`),
      }
    }),
    ...['scene', 'printed'].map((shape) => {
      const m = ours('shapes-20MB')?.median
      return {
        target: `shapes-20MB (issue 20): executeRaw of the ${shape} reply ≤ 1.15× the plain string's`,
        ...verdict(m ? m[`raw_${shape}`] / m.raw_string : null, (v) => v <= 1.15),
        fmt: fmtRatio,
      }
    }),
    {
      target: 'shapes-20MB (issue 20): execute of the scene dump ≤ bare JSON.parse + 20 ms',
      ...verdict(ours('shapes-20MB')?.median ? ours('shapes-20MB').median.json_scene - ours('shapes-20MB').median.parse_scene : null, (v) => v <= 20_000),
      fmt: (v) => `parse + ${fmtMicros(v)}`,
    },
    { target: 'c1: main-thread CPU/op ≤ original', ...verdict(ratio('c1', 'mainCpuPerOpUs'), (v) => v <= 1), fmt: fmtRatio },
    { target: 'c16: main-thread CPU/op ≤ original', ...verdict(ratio('c16', 'mainCpuPerOpUs'), (v) => v <= 1), fmt: fmtRatio },
  ].map(({ fmt, ...t }) => ({ ...t, shown: t.value === null ? '—' : fmt(t.value) }))
}

export function targetsList(targets) {
  const mark = { met: '✅ met', missed: '❌ missed', 'n/a': '— n/a' }
  return table(['target', 'this run', 'verdict'], targets.map((t) => [t.target, t.shown, mark[t.verdict]]))
}

/**
 * The whole report: tables and targets, for stdout and RESULTS.md. A short run (the smoke test
 * of `npm test`) has too few operations for the targets to mean anything: it leaves them out.
 */
export function reportMarkdown(rows, targets, { short = false } = {}) {
  const targetLines = short ? [] : ['### Targets of issues 4, 14 and 20 (information only; the benchmark never fails on them)', '', targetsList(targets), '']
  const fresh = freshTable(rows, WORKLOADS)
  const freshLines = fresh
    ? [
        '### Big replies on a fresh pool per call (issue 14; medians over rounds of each round\'s p50)',
        '',
        'Each call on a new pool (its connection still opening), no warm-up; after each call the same process times a bare `JSON.parse` of the same text.',
        '',
        fresh,
        '',
      ]
    : []
  const shapes = shapesTable(rows, WORKLOADS)
  const shapeLines = shapes
    ? [
        '### Big structured replies against the plain string (issue 20; medians over rounds of each round\'s median)',
        '',
        'One warm pool per process; each round calls `executeRaw` for every shape, then `execute` and a bare `JSON.parse` of the same text for the structured ones.',
        '',
        shapes,
        '',
      ]
    : []
  return [
    '### Figures (medians over rounds)',
    '',
    mainTable(rows.filter((r) => !r.workload.startsWith('shapes-'))),
    '',
    ...freshLines,
    ...shapeLines,
    '### Every figure as a ratio to the original pool (same run)',
    '',
    'Above 1 is more for ops/s and less for the others: read ops/s up, everything else down.',
    '',
    ratioTable(rows),
    '',
    ...targetLines,
  ].join('\n')
}

/** bench/RESULTS.md: the machine, the command, then the report. */
export function resultsFile(meta, report) {
  return [
    '# Benchmark results (latest recorded run)',
    '',
    'Written by `node bench/run.mjs --write`; see [README.md](README.md) for what each column means.',
    '',
    `- date: ${meta.date}`,
    `- machine: ${meta.uname}; CPU: ${meta.cpuModel}; ${meta.cores} cores; ${meta.memoryGB} GB RAM`,
    `- load average (1 min) before / after: ${meta.loadBefore} / ${meta.loadAfter}`,
    `- Node ${meta.node}; ${meta.rustc}`,
    `- command: \`${meta.command}\``,
    `- rounds: ${meta.rounds}; ${meta.short ? 'short run' : 'full run'}; contender timeout ${meta.timeoutS} s`,
    `- CPU pinning: ${meta.pinning}`,
    '',
    report,
  ].join('\n')
}
