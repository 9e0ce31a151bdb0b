'use strict'
// The options, declared once (OPTIONS), and the checks of what a caller passes: a pool's config
// and a call's options. An option given as `undefined` is not given, everywhere.

const { describe, invalidArg, outOfRange } = require('./errors.js')
const { DEFAULT_PROGRESS_INTERVAL } = require('./progress.js')

/** The longest delay a JavaScript timer accepts (2^31 - 1 ms). */
const MAX_MS = 2147483647

/**
 * The longest reply a pool may accept: a reply is handed to JavaScript as one string, and V8's
 * strings hold at most this many characters (a UTF-8 reply never has more characters than bytes).
 */
const MAX_REPLY_BYTES = Math.min(4294967295, require('node:buffer').constants.MAX_STRING_LENGTH)

/**
 * Every option of `new ConnectionPool(config)` and `configureConnectionPool(config)`, once, in
 * the order `pool.config` lists them. Each has:
 * - `name`, and `type`: `'integer'` (a whole number from `min` to `max`; `unit` ms or bytes),
 *   `'string'` (`min` to `max` characters), `'enum'` (one of `values`), or `'logger'`;
 * - `default`: what `pool.config` holds when neither the option nor `env` is given (`logger` and
 *   `loggerStyle` have none and are not in `pool.config`); `sharedDefault`: the default of the
 *   shared pools (getConnectionPool()'s and the socket client's) where it differs;
 * - `env`: the environment variable read when the option is not given, with its own range;
 * - `doc`: one line for the table of docs/configuration.md.
 *
 * Derived from it: the type checks of `checkConfig` (unknown options included), the shared
 * pools' defaults, and the table of docs/configuration.md (`npm run docs:options`). Values are
 * range-checked by the core (core/src/config.rs); `__test__/api/options.spec.mjs` holds the core's
 * ranges and defaults, `index.d.ts`, the binding's `JsPoolConfig` and `pool.config` to this list.
 */
const OPTIONS = Object.freeze(
  [
    {
      name: 'name',
      type: 'string',
      min: 1,
      max: 100,
      default: 'default',
      doc: "the pool's name: the `pool` label of its metrics, `poolName` in its log records, `pool` in its diagnostics messages",
    },
    {
      name: 'host',
      type: 'string',
      min: 1,
      default: 'localhost',
      env: { name: 'BLENDER_HOST' },
      doc: "Blender add-on host; every address the name resolves to is tried, the next one after 250 ms or as soon as the previous fails (as Node's `autoSelectFamily`), so `localhost` reaches an IPv4-only add-on at once where `::1` comes first",
    },
    {
      name: 'port',
      type: 'integer',
      min: 1,
      max: 65535,
      default: 9876,
      env: { name: 'BLENDER_PORT', min: 1, max: 65535 },
      doc: 'Blender add-on port',
    },
    {
      name: 'minConnections',
      type: 'integer',
      min: 0,
      max: 10000,
      default: 1,
      doc: 'kept open even when idle, opened in the background; at most `maxConnections`',
    },
    {
      name: 'maxConnections',
      type: 'integer',
      min: 1,
      max: 10000,
      default: 5,
      doc: "hard cap on open plus opening sockets (a discarded connection's slot is reused only once its socket is closed)",
    },
    {
      name: 'connectionTimeout',
      type: 'integer',
      unit: 'ms',
      min: 1,
      max: MAX_MS,
      default: 30000,
      doc: 'bounds one connect attempt that hangs (a host that drops packets), and the longest a caller waits for a free connection',
    },
    {
      name: 'connectRetryTimeout',
      type: 'integer',
      unit: 'ms',
      min: 0,
      max: MAX_MS,
      default: 2000,
      doc: 'how long a caller is held while Blender is unreachable (connects refused or failing): connects are retried meanwhile, at most 250 ms apart, then `ERR_CONNECT`; `0`: fail with the first attempt made for the call',
    },
    {
      name: 'idleTimeout',
      type: 'integer',
      unit: 'ms',
      min: 1,
      max: MAX_MS,
      default: 60000,
      doc: 'an idle connection above `minConnections` closes after this long unused',
    },
    {
      name: 'maxRequestsPerConnection',
      type: 'integer',
      min: 1,
      max: Number.MAX_SAFE_INTEGER,
      default: 1000,
      doc: 'a connection is closed and replaced after this many requests',
    },
    {
      name: 'healthCheckInterval',
      type: 'integer',
      unit: 'ms',
      min: 1,
      max: MAX_MS,
      default: 30000,
      doc: 'period of the background top-up to `minConnections` (failed top-ups back off: 100 ms doubling, never sooner than this, at most 60 s apart)',
    },
    {
      name: 'mutexTimeout',
      type: 'integer',
      unit: 'ms',
      min: 0,
      max: MAX_MS,
      default: 30000,
      doc: 'accepted for compatibility with the original pool, unused (this pool has no async mutex)',
    },
    {
      name: 'socketTimeout',
      type: 'integer',
      unit: 'ms',
      min: 1,
      max: MAX_MS,
      default: 180000,
      env: { name: 'SOCKET_TIMEOUT', min: 1000, max: 600000 },
      doc: 'reply timeout, restarted whenever bytes arrive',
    },
    {
      name: 'maxResponseBytes',
      type: 'integer',
      unit: 'bytes',
      min: 1,
      max: MAX_REPLY_BYTES,
      default: 64 * 1024 * 1024,
      sharedDefault: 50 * 1024 * 1024,
      doc: "a reply whose body (leading whitespace and length prefix aside) is larger fails with `ERR_RESPONSE_TOO_LARGE`; at most `buffer.constants.MAX_STRING_LENGTH`, since a reply becomes one JavaScript string. The shared pools default to 50 MiB, the server's own socket-client cap",
    },
    {
      name: 'maxLifetime',
      type: 'integer',
      unit: 'ms',
      min: 0,
      max: MAX_MS,
      default: 1800000,
      doc: 'a connection is replaced at its next idle moment after this long, less up to 10% jitter; `0` disables',
    },
    {
      name: 'newConnectionSettle',
      type: 'integer',
      unit: 'ms',
      min: 0,
      max: 60000,
      default: 25,
      doc: 'a new connection is watched this long before its first request, and again after its first reply before it is reused: a server that greets, or closes after each reply, is found then; once a connection came through clean, later ones are not watched until something out of step is seen, so with Blender (which never speaks first) this costs a caller at most once; `0` disables it',
    },
    {
      name: 'framing',
      type: 'enum',
      values: ['json', 'length-prefixed'],
      default: 'json',
      doc: "`'json'`: request JSON + `\\n`, reply a bare JSON object; `'length-prefixed'`: every message both ways is a 4-byte big-endian length then JSON (a length over `maxResponseBytes` is refused at once)",
    },
    {
      name: 'logger',
      type: 'logger',
      doc: 'an object with `debug`, `info`, `warn`, `error` (pino and bunyan loggers as they are): receives each record of this pool instead of stderr (see docs/observability.md)',
    },
    {
      name: 'loggerStyle',
      type: 'enum',
      values: ['message-fields', 'fields-message', 'message-error-fields'],
      doc: "how `logger` takes a record: `'fields-message'` (pino, bunyan), `'message-error-fields'` (the ClaudeKit server's logger) or `'message-fields'`; detected when not given",
    },
  ].map(Object.freeze),
)

const BY_NAME = new Map(OPTIONS.map((option) => [option.name, option]))

/** The options that `pool.config` shows: all but the logger's two. */
const RESOLVED = OPTIONS.filter((option) => 'default' in option).map((option) => option.name)

/**
 * Where the shared pools (getConnectionPool()'s, and those the socket client opens for other
 * addresses) differ from `new ConnectionPool()`: replies are capped at the server's own socket
 * client's 50 MB, since they carry that client's traffic.
 */
const SHARED_DEFAULTS = Object.freeze(
  Object.fromEntries(OPTIONS.filter((o) => 'sharedDefault' in o).map((o) => [o.name, o.sharedDefault])),
)

/**
 * The options `config` gives, type-checked, as a new plain object: an option set to `undefined`
 * is left out (not given), an unknown one throws naming it. Values are range-checked by the
 * core when the pool is built; the logger's two options by `hostLogSink` (logging.js).
 */
function checkConfig(config) {
  if (config === undefined || config === null) return {}
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw invalidArg(`Invalid ConnectionPool config: expected an object, got ${describe(config)}`)
  }
  for (const key of Object.keys(config)) {
    if (!BY_NAME.has(key) && config[key] !== undefined) throw unknownOption(key)
  }
  const given = {}
  for (const option of OPTIONS) {
    const value = config[option.name]
    if (value === undefined) continue
    // The logger's two options are checked together, by hostLogSink (logging.js).
    const expected = option.type === 'integer' ? 'number' : 'string'
    if (RESOLVED.includes(option.name) && typeof value !== expected) {
      throw invalidArg(`Invalid ConnectionPool config: ${option.name} must be a ${expected}, got ${describe(value)}`)
    }
    given[option.name] = value
  }
  // The core allows up to 4 GiB; the limit of one JavaScript string is JavaScript's to check.
  if (given.maxResponseBytes > MAX_REPLY_BYTES) {
    throw outOfRange(
      `Invalid ConnectionPool config: maxResponseBytes must be at most ${MAX_REPLY_BYTES}, the longest ` +
        `string JavaScript can hold (a reply is handed over as one string), got ${given.maxResponseBytes}`,
    )
  }
  return given
}

/** The error for an option no pool has, naming it and, for a near miss, the one meant. */
function unknownOption(key) {
  const near = OPTIONS.find((o) => o.name.toLowerCase() === key.toLowerCase() || editDistance(o.name, key) <= 2)
  const err = new TypeError(
    `Invalid ConnectionPool config: unknown option ${JSON.stringify(key)}` +
      (near === undefined ? '' : ` (did you mean ${near.name}?)`) +
      `; the options are ${OPTIONS.map((o) => o.name).join(', ')}`,
  )
  err.code = 'ERR_INVALID_ARG_VALUE'
  return err
}

/** Levenshtein distance, for the "did you mean" of a misspelt option. */
function editDistance(a, b) {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    row = next
  }
  return row[b.length]
}

/** What a call with no options (or only `undefined` ones) runs with. */
const NO_OPTIONS = Object.freeze({
  signal: undefined,
  timeout: undefined,
  onProgress: undefined,
  progressInterval: DEFAULT_PROGRESS_INTERVAL,
})

/**
 * The per-call options `{ signal, timeout, onProgress, progressInterval }`, checked. `timeout`
 * and `progressInterval` are in ms, positive numbers.
 */
function checkCallOptions(options) {
  if (options === undefined || options === null) return NO_OPTIONS
  if (typeof options !== 'object') {
    throw invalidArg(`options must be an object, got ${describe(options)}`)
  }
  const { signal, timeout, onProgress, progressInterval = DEFAULT_PROGRESS_INTERVAL } = options
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalidArg(`options.signal must be an AbortSignal, got ${describe(signal)}`)
  }
  checkMs('timeout', timeout)
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw invalidArg(`options.onProgress must be a function, got ${describe(onProgress)}`)
  }
  checkMs('progressInterval', progressInterval)
  return { signal, timeout, onProgress, progressInterval }
}

/** A per-call duration: absent, or a positive number of ms that a JavaScript timer accepts. */
function checkMs(name, ms) {
  if (ms === undefined) return
  if (typeof ms !== 'number') throw invalidArg(`options.${name} must be a number, got ${describe(ms)}`)
  if (!(ms > 0) || ms > MAX_MS) {
    throw outOfRange(`options.${name} must be a positive number of ms up to ${MAX_MS}, got ${ms}`)
  }
}

module.exports = {
  OPTIONS,
  RESOLVED,
  SHARED_DEFAULTS,
  MAX_MS,
  MAX_REPLY_BYTES,
  NO_OPTIONS,
  checkConfig,
  checkCallOptions,
}
