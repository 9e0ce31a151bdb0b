'use strict'
// One call to the native side, from its arguments to its settled promise: the request body,
// the table of a pool's pending calls (which the native side settles by id), aborts and the
// diagnostics messages of each command.

const { commandStarted, commandsObserved, publishOutcome } = require('./diagnostics.js')
const { BlenderPoolError, abortError, describe, internalError, invalidArg } = require('./errors.js')
const { checkCallOptions } = require('./options.js')
const { watchProgress } = require('./progress.js')

function isPlainObject(value) {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * The request body, or a TypeError. Checked before anything is sent.
 * `null` params are treated as absent, as the original pool did.
 */
function encodeRequest(type, params) {
  if (typeof type !== 'string' || type.length === 0) {
    throw invalidArg(`execute: type must be a non-empty string, got ${describe(type)}`)
  }
  if (params === undefined || params === null) return JSON.stringify({ type })
  if (!isPlainObject(params)) {
    throw invalidArg(`execute: params must be a plain object, got ${describe(params)}`)
  }
  try {
    return JSON.stringify({ type, params })
  } catch (cause) {
    const err = new TypeError(`execute: params cannot be serialised to JSON: ${cause.message}`, { cause })
    err.code = 'ERR_INVALID_ARG_VALUE'
    throw err
  }
}

/**
 * What a call resolves to, from the native outcome `(text, lease)`: one of these, or (for
 * `acquire`) a function that wraps the lease.
 */
const REPLY = Object.freeze({
  /** The reply, parsed. */
  json(text) {
    try {
      return JSON.parse(text)
    } catch (cause) {
      // The native side validated this text; reaching here is a bug, not a bad reply.
      throw new BlenderPoolError('ERR_INTERNAL', `Reply passed validation but not JSON.parse: ${cause.message}`)
    }
  },
  /** The reply's JSON text, validated, not parsed. */
  text: (text) => text,
  /** Nothing: `shutdown()`. */
  none: () => undefined,
})

/**
 * The calls of one pool waiting for their outcome, by call id, and the function the native
 * side calls to settle them. Holds the pool only through its pending calls (see `start`), so
 * an abandoned pool is garbage-collected once nothing is pending on it.
 */
function createCallTable(pool) {
  const calls = new Map()
  let nextId = 0
  return {
    /** The pool's name, for diagnostics messages. */
    pool,
    /** Registers a call; returns its id. */
    add(entry) {
      nextId = nextId === 0xffffffff ? 1 : nextId + 1
      calls.set(nextId, entry)
      return nextId
    },
    /** Forgets a call that could not be started. */
    remove(id) {
      calls.delete(id)
    },
    /** Whether call `id` is still waiting for its outcome. */
    has(id) {
      return calls.has(id)
    },
    /** Settles call `id`: `code` null and the reply's `text` (or a `lease`), or a failure. */
    settle(id, code, text, lease, conn) {
      const call = calls.get(id)
      if (call === undefined) return
      calls.delete(id)
      if (call.stopProgress !== undefined) call.stopProgress()
      if (call.signal !== undefined) call.signal.removeEventListener('abort', call.onAbort)
      if (call.diag !== undefined) publishOutcome(call.diag, code, text, conn)
      if (code !== null) {
        call.reject(
          code === 'ABORT_ERR' && call.signal !== undefined
            ? abortError(call.signal)
            : new BlenderPoolError(code, text),
        )
        return
      }
      let value
      try {
        value = call.outcome(text, lease)
      } catch (err) {
        call.reject(err)
        return
      }
      call.resolve(value)
    },
  }
}

/**
 * Starts one native call on `target` (the native pool or lease) and returns its promise, which
 * resolves to `outcome(text, lease)`. `begin(id)` starts it and returns the pool's id of the
 * call, which an abort passes to `cancel`. The call's entry holds `target` until it settles: a
 * pool abandoned with a call pending is not collected (and so not shut down) before that call
 * is answered.
 */
function start(table, target, outcome, options, begin, cancel, diag = undefined) {
  const { signal } = options
  if (signal?.aborted) {
    const err = abortError(signal)
    if (diag !== undefined) publishOutcome(diag, err.code, null, null)
    return Promise.reject(err)
  }
  return new Promise((resolve, reject) => {
    const entry = {
      outcome,
      resolve,
      reject,
      target,
      diag,
      signal: undefined,
      onAbort: undefined,
      stopProgress: undefined,
    }
    const id = table.add(entry)
    let callId
    try {
      callId = begin(id)
    } catch (err) {
      table.remove(id)
      const failure = internalError(err)
      if (diag !== undefined) publishOutcome(diag, failure.code ?? 'ERR_INVALID_ARG_TYPE', null, null)
      reject(failure)
      return
    }
    if (signal !== undefined && table.has(id)) {
      entry.signal = signal
      entry.onAbort = () => cancel(callId)
      signal.addEventListener('abort', entry.onAbort, { once: true })
    }
    if (options.onProgress !== undefined && table.has(id)) {
      entry.stopProgress = watchProgress(target, callId, options.onProgress, options.progressInterval)
    }
  })
}

/**
 * Sends one command through `target` (the native pool, or a native lease: both have
 * `submit(id, type, body, timeout)`, `cancel(call)` and `progress(call)`), resolving to `outcome(text)`
 * (`REPLY.json` or `REPLY.text`). Arguments are checked first: a bad one rejects without
 * anything being sent.
 */
function command(table, target, outcome, type, params, options) {
  let body
  let checked
  try {
    body = encodeRequest(type, params)
    checked = checkCallOptions(options)
  } catch (err) {
    return Promise.reject(err)
  }
  const diag = commandsObserved() ? commandStarted(table.pool, type, body) : undefined
  return start(
    table,
    target,
    outcome,
    checked,
    (id) => target.submit(id, type, body, checked.timeout),
    (call) => target.cancel(call),
    diag,
  )
}

module.exports = { REPLY, createCallTable, start, command }
