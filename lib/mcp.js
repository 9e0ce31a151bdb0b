'use strict'
// The bridge from an MCP tool handler to a call's options: the client's cancellation becomes the
// call's AbortSignal, and the call's progress becomes `notifications/progress` for the request's
// progress token, which keeps a client that restarts its clock on progress (Claude Code, the
// SDK's `resetTimeoutOnProgress`) waiting while Blender works. Needs nothing of the MCP SDK:
// only what it hands every tool handler (`extra.signal`, `extra._meta`,
// `extra.sendNotification`).

const { human } = require('./units.js')

/** A short human line for a progress report: what the call waits for, and for how long. */
function progressMessage(info) {
  const waited = human(info.elapsedMs)
  const busy =
    info.busy === null ? '' : `; Blender is busy: "${info.busy.command}" running for ${human(info.busy.runningMs)}`
  switch (info.phase) {
    case 'waiting':
      return `waiting for a connection to Blender (${waited})${busy}`
    case 'sent':
      return info.busy === null
        ? `waiting for Blender (${waited})`
        : `waiting for Blender: "${info.busy.command}" running for ${human(info.busy.runningMs)}`
    default:
      return `receiving Blender's reply: ${bytes(info.bytesReceived)} so far (${waited})`
  }
}

function bytes(n) {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`
  return `${(n / (1024 * 1024)).toFixed(1)} MB`
}

/**
 * The options of a call made for an MCP tool handler: `{ signal, onProgress }` from its
 * `extra`. `onProgress` sends `notifications/progress` with the request's progress token, and
 * is left out when the client asked for no progress (no token). `options` are added as they are
 * (`progressInterval`, `timeout`).
 */
function mcpCallOptions(extra, options = undefined) {
  const out = { ...options }
  if (extra?.signal !== undefined) out.signal = extra.signal
  const token = extra?._meta?.progressToken
  const send = extra?.sendNotification
  if ((typeof token === 'string' || typeof token === 'number') && typeof send === 'function') {
    let progress = 0
    out.onProgress = (info) => {
      progress += 1
      const notification = {
        method: 'notifications/progress',
        params: { progressToken: token, progress, message: progressMessage(info) },
      }
      // A client gone or a transport closed: the report is lost, the call goes on.
      Promise.resolve()
        .then(() => send(notification))
        .catch(() => {})
    }
  }
  return out
}

module.exports = { mcpCallOptions, progressMessage }
