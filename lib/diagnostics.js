'use strict'
// `node:diagnostics_channel` channels (the convention undici follows): tracing and APM tools
// subscribe without any option. Messages carry the pool's name, command types, sizes,
// durations, connection ids and codes, never params or replies. Nothing is built unless
// someone subscribes.

const diagnostics = require('node:diagnostics_channel')

const channels = {
  start: diagnostics.channel('blender-mcp-pool:command:start'),
  end: diagnostics.channel('blender-mcp-pool:command:end'),
  error: diagnostics.channel('blender-mcp-pool:command:error'),
  open: diagnostics.channel('blender-mcp-pool:connection:open'),
  close: diagnostics.channel('blender-mcp-pool:connection:close'),
}

/** Whether anyone listens to a command's channels (if not, nothing is measured). */
function commandsObserved() {
  return channels.start.hasSubscribers || channels.end.hasSubscribers || channels.error.hasSubscribers
}

/** Publishes `command:start`; returns what `command:end` / `command:error` will need. */
function commandStarted(pool, type, body) {
  const diag = { pool, type, requestBytes: Buffer.byteLength(body), started: performance.now() }
  if (channels.start.hasSubscribers) channels.start.publish({ pool, type, requestBytes: diag.requestBytes })
  return diag
}

/** Publishes `command:end` or `command:error` for a settled command. */
function publishOutcome({ pool, type, requestBytes, started }, code, text, conn) {
  const durationMs = performance.now() - started
  const connectionId = conn === null || conn === undefined ? null : `conn-${conn}`
  if (code === null) {
    if (channels.end.hasSubscribers) {
      channels.end.publish({ pool, type, requestBytes, replyLength: text.length, durationMs, connectionId })
    }
  } else if (channels.error.hasSubscribers) {
    channels.error.publish({ pool, type, requestBytes, durationMs, code, connectionId })
  }
}

/** The function the native side calls with a pool's connection events. Holds no pool. */
function connectionEvents(pool) {
  return (kind, conn, reason) => {
    const channel = kind === 'open' ? channels.open : channels.close
    if (!channel.hasSubscribers) return
    channel.publish(
      kind === 'open' ? { pool, connectionId: `conn-${conn}` } : { pool, connectionId: `conn-${conn}`, reason },
    )
  }
}

module.exports = { commandsObserved, commandStarted, publishOutcome, connectionEvents }
