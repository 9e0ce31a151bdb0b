'use strict'
// Durations as people read them, the same way the native side words them in errors.

/** `850 ms`, `4.2 s`, `212 s`. */
function human(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 10000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`
  return `${Math.floor(ms / 1000)} s`
}

module.exports = { human }
