// Measurements taken inside a contender's process: latency percentiles, main-thread CPU time,
// and the medians run.mjs takes over rounds.
import { readFileSync } from 'node:fs'

/** Nearest-rank percentile of an ascending array (the rule the Rust client uses too). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1]
}

/** Median of the finite numbers in `values` (null when there are none). */
export function median(values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b)
  if (xs.length === 0) return null
  const mid = xs.length >> 1
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2
}

const CLOCK_TICK_US = 10_000 // USER_HZ = 100 on Linux

/**
 * CPU time (µs) the main thread (tid == pid) has used. Node 20 has no process.threadCpuUsage:
 * this reads /proc/self/task/<pid>/schedstat (nanoseconds on CPU), falling back to utime + stime
 * of /proc/self/task/<pid>/stat (clock ticks) when schedstat is missing. null off Linux.
 */
export function mainThreadCpuUs() {
  const task = `/proc/self/task/${process.pid}`
  try {
    return Number(readFileSync(`${task}/schedstat`, 'utf8').split(' ')[0]) / 1000
  } catch {}
  try {
    const stat = readFileSync(`${task}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields from #3 (state) on
    return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_US // #14 utime, #15 stime
  } catch {
    return null
  }
}

/** CPU time (µs, user + system) of the whole process. */
export function processCpuUs() {
  const { user, system } = process.cpuUsage()
  return user + system
}
