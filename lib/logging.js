'use strict'
// The `logger` option: the function the native side calls with each record of a pool that has
// a host logger, in that logger's own calling convention.

const { describe, invalidArg, outOfRange } = require('./errors.js')
const { OPTIONS } = require('./options.js')

const LOG_LEVELS = ['debug', 'info', 'warn', 'error']

/** How a host logger takes a record (see `loggerStyle` in index.d.ts). */
const LOGGER_STYLES = OPTIONS.find((option) => option.name === 'loggerStyle').values

/**
 * The calling convention of `logger`, when not given: pino and bunyan take `(fields, message)`;
 * a logger whose `error` declares three parameters takes `(message, error, fields)` there (the
 * ClaudeKit server's `error(message, error?, context?)`); others `(message, fields)`.
 */
function detectLoggerStyle(logger) {
  const pino = typeof logger.child === 'function' && typeof logger.levels?.values === 'object'
  const bunyan = typeof logger.child === 'function' && Array.isArray(logger.streams)
  if (pino || bunyan) return 'fields-message'
  if (logger.error.length === 3) return 'message-error-fields'
  return 'message-fields'
}

/**
 * The function the native side calls with each record of a pool that has a `logger`: it calls
 * `logger[level]` in the logger's own convention. A logger that throws is ignored: logging must
 * never break a call. `undefined` without a logger (records go to stderr).
 */
function hostLogSink(logger, style) {
  if (logger === undefined || logger === null) {
    if (style !== undefined) {
      throw invalidArg('Invalid ConnectionPool config: loggerStyle is only meaningful with a logger')
    }
    return undefined
  }
  if (typeof logger !== 'object' && typeof logger !== 'function') {
    throw invalidArg(`Invalid ConnectionPool config: logger must be an object, got ${describe(logger)}`)
  }
  const missing = LOG_LEVELS.filter((level) => typeof logger[level] !== 'function')
  if (missing.length > 0) {
    throw invalidArg(
      `Invalid ConnectionPool config: logger must have debug, info, warn and error methods (missing: ${missing.join(', ')})`,
    )
  }
  if (style !== undefined && !LOGGER_STYLES.includes(style)) {
    throw outOfRange(
      `Invalid ConnectionPool config: loggerStyle must be one of ${LOGGER_STYLES.join(', ')}, got ${describe(style)}`,
    )
  }
  const call = {
    'message-fields': (level, message, fields) => logger[level](message, fields),
    'fields-message': (level, message, fields) => logger[level](fields, message),
    'message-error-fields': (level, message, fields) =>
      level === 'error' ? logger.error(message, undefined, fields) : logger[level](message, fields),
  }[style ?? detectLoggerStyle(logger)]
  return (level, message, fieldsJson) => {
    try {
      call(level, message, JSON.parse(fieldsJson))
    } catch {
      // The host's logger failed; nothing sensible to do with that here.
    }
  }
}

module.exports = { hostLogSink }
