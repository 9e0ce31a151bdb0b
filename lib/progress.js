'use strict'
// Progress reports of one call: `onProgress(info)` at a steady interval while the call waits,
// and, throttled, as its reply arrives. A long Blender command (a render, an import) is silent
// for minutes, and an MCP client gives up on silence unless it hears progress.
//
// Only a call given `onProgress` pays anything: one unref'd timer, which asks the native side
// where the call stands (`progress(callId)`: a lock and a lookup, no I/O).

/** Default ms between two reports while a call waits. */
const DEFAULT_PROGRESS_INTERVAL = 2000
/** How often a call's state is looked at, and the least time between two reports. */
const TICK_MS = 250

/**
 * What `onProgress` is given, from the native snapshot `p` of a call that started `elapsedMs`
 * ago.
 */
function progressInfo(p, elapsedMs) {
  return {
    phase: p.phase,
    elapsedMs,
    phaseMs: p.phaseMs,
    bytesReceived: p.bytesReceived,
    busy: p.busyCommand === undefined ? null : { command: p.busyCommand, runningMs: p.busyMs },
  }
}

/**
 * Starts reporting the progress of call `callId` on `target` (the native pool or lease) to
 * `onProgress`, every `interval` ms, and as reply bytes arrive (at most every 250 ms). Returns
 * the function that stops it: called when the call settles, so `onProgress` is never called
 * after. An `onProgress` that throws is ignored: a report never breaks the call.
 */
function watchProgress(target, callId, onProgress, interval) {
  const started = performance.now()
  let lastReport = started
  let lastBytes = 0
  let stopped = false
  const timer = setInterval(
    () => {
      if (stopped) return
      const p = target.progress(callId)
      if (p === null) return
      const now = performance.now()
      const arriving = p.phase === 'receiving' && p.bytesReceived !== lastBytes && now - lastReport >= TICK_MS
      if (!arriving && now - lastReport < interval) return
      lastReport = now
      lastBytes = p.bytesReceived
      try {
        onProgress(progressInfo(p, now - started))
      } catch {
        // The caller's callback failed: its report is lost, its call goes on.
      }
    },
    // A whole number of ticks per interval, so that reports keep the interval's pace.
    interval / Math.ceil(interval / TICK_MS),
  )
  timer.unref()
  return () => {
    stopped = true
    clearInterval(timer)
  }
}

module.exports = { DEFAULT_PROGRESS_INTERVAL, watchProgress, progressInfo }
