'use strict'
// The error classes of the package, and the helpers that build Node-style argument errors.

/** Every rejection of the pool: an Error with a stable `code` (see docs/errors.md). */
class BlenderPoolError extends Error {
  constructor(code, message) {
    super(message)
    this.name = 'BlenderPoolError'
    this.code = code
  }
}

/** A call aborted through its `AbortSignal`: `name` 'AbortError', `code` 'ABORT_ERR'. */
class AbortError extends BlenderPoolError {
  constructor(message = 'The operation was aborted', options = undefined) {
    super('ABORT_ERR', message)
    this.name = 'AbortError'
    if (options !== undefined && 'cause' in options) this.cause = options.cause
  }
}

/**
 * Kept for compatibility with the original pool, whose async mutex could time out. This pool
 * has no such mutex, so it never throws it; `instanceof MutexTimeoutError` checks stay valid.
 */
class MutexTimeoutError extends Error {
  constructor(operation, timeoutMs) {
    super(`Mutex acquisition timeout after ${timeoutMs}ms during ${operation}`)
    this.name = 'MutexTimeoutError'
  }
}

/** A `TypeError` with code `ERR_INVALID_ARG_TYPE`: an argument of the wrong type. */
function invalidArg(message) {
  const err = new TypeError(message)
  err.code = 'ERR_INVALID_ARG_TYPE'
  return err
}

/** A `RangeError` with code `ERR_OUT_OF_RANGE`: an argument of the right type, out of range. */
function outOfRange(message) {
  const err = new RangeError(message)
  err.code = 'ERR_OUT_OF_RANGE'
  return err
}

/** The `AbortError` of a call whose `signal` fired. */
function abortError(signal) {
  return new AbortError('The operation was aborted', { cause: signal.reason })
}

/** A native method threw (a caught Rust panic, most likely): never expected. */
function internalError(cause) {
  if (cause instanceof BlenderPoolError || cause instanceof TypeError || cause instanceof RangeError) return cause
  const err = new BlenderPoolError('ERR_INTERNAL', `Internal error in blender-mcp-pool: ${cause?.message ?? cause}`)
  err.cause = cause
  return err
}

/** A value as an error message names it: its type, or a string's first 40 characters. */
function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'string' ? `string ${JSON.stringify(value.slice(0, 40))}` : typeof value
}

module.exports = {
  BlenderPoolError,
  AbortError,
  MutexTimeoutError,
  invalidArg,
  outOfRange,
  abortError,
  internalError,
  describe,
}
