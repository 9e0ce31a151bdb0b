'use strict'
// blender-mcp-pool: the JavaScript face of the native pool.
//
// What lives here is what JavaScript does best: checking argument types, JSON.stringify of the
// request, JSON.parse of the reply, promises and error classes. Everything else (sockets,
// framing, queueing, timeouts) is in Rust; see src/ and core/src/.

/**
 * The prebuilt binaries published with each release: the targets of package.json's `napi`
 * section (the one list, which the release workflow builds), named as napi-rs names their
 * packages (`x86_64-unknown-linux-gnu` is `linux-x64-gnu`).
 */
const PREBUILT = require('./package.json').napi.targets.map((triple) => {
  const [cpu, , os, abi] = triple.split('-')
  const platform = { linux: 'linux', darwin: 'darwin', windows: 'win32' }[os]
  const arch = { x86_64: 'x64', aarch64: 'arm64' }[cpu]
  return abi === undefined ? `${platform}-${arch}` : `${platform}-${arch}-${abi}`
})
/** Where to ask for another platform. */
const ISSUES = 'https://github.com/claudekit/blender-mcp-pool/issues'

const native = loadNative()

/** The native addon, or an error that says which platform lacks one and what to do. */
function loadNative() {
  try {
    return require('./binding.js')
  } catch (cause) {
    // The suffix napi-rs gives each platform's package: the C runtime on Linux and Windows.
    let abi = ''
    if (process.platform === 'linux') {
      abi = process.report?.getReport?.().header?.glibcVersionRuntime ? '-gnu' : '-musl'
    } else if (process.platform === 'win32') {
      abi = '-msvc'
    }
    const platform = `${process.platform}-${process.arch}${abi}`
    // Only a clone of the repository has the Rust sources; a copy from npm does not.
    const fromSource = require('node:fs').existsSync(require('node:path').join(__dirname, 'Cargo.toml'))
    const advice = fromSource
      ? 'This is a source checkout: build the binary with a Rust toolchain (npm run build). '
      : PREBUILT.includes(platform)
        ? `Its binary comes in the optional dependency blender-mcp-pool-${platform}: reinstall ` +
          'without --no-optional/--omit=optional (if that does not help, delete node_modules and ' +
          'package-lock.json first: npm bug 4828). '
        : `There is no prebuilt binary for ${platform}: ask for one at ${ISSUES}. `
    const err = new Error(
      `blender-mcp-pool: no native binary could be loaded for ${platform}. ` +
        `Supported platforms: ${PREBUILT.join(', ')}. ${advice}Loader said: ${cause.message}`,
      { cause },
    )
    err.code = 'ERR_BLENDER_POOL_NO_BINARY'
    throw err
  }
}

native.initLogging(process.env.LOG_LEVEL, process.env.LOG_FORMAT)

/**
 * `node:diagnostics_channel` channels (the convention undici follows): tracing and APM tools
 * subscribe without any option. Messages carry the pool's name, command types, sizes,
 * durations, connection ids and codes, never params or replies. Nothing is built unless
 * someone subscribes.
 */
const diagnostics = require('node:diagnostics_channel')
const channels = {
  start: diagnostics.channel('blender-mcp-pool:command:start'),
  end: diagnostics.channel('blender-mcp-pool:command:end'),
  error: diagnostics.channel('blender-mcp-pool:command:error'),
  open: diagnostics.channel('blender-mcp-pool:connection:open'),
  close: diagnostics.channel('blender-mcp-pool:connection:close'),
}

/** Numeric options, all whole numbers (milliseconds for durations). */
const NUMERIC_OPTIONS = [
  'port',
  'minConnections',
  'maxConnections',
  'connectionTimeout',
  'connectRetryTimeout',
  'idleTimeout',
  'maxRequestsPerConnection',
  'healthCheckInterval',
  'mutexTimeout',
  'socketTimeout',
  'maxResponseBytes',
  'maxLifetime',
]

/** Every rejection of the pool: an Error with a stable `code` (see README, "Errors"). */
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

function invalidArg(message) {
  const err = new TypeError(message)
  err.code = 'ERR_INVALID_ARG_TYPE'
  return err
}

/**
 * The longest reply a pool may accept: a reply is handed to JavaScript as one string, and V8's
 * strings hold at most this many characters (a UTF-8 reply never has more characters than bytes).
 */
const MAX_REPLY_BYTES = require('node:buffer').constants.MAX_STRING_LENGTH

function checkConfig(config) {
  if (config === undefined || config === null) return {}
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw invalidArg(`Invalid ConnectionPool config: expected an object, got ${describe(config)}`)
  }
  const checked = {}
  for (const key of NUMERIC_OPTIONS) {
    const value = config[key]
    if (value === undefined) continue
    if (typeof value !== 'number') {
      throw invalidArg(`Invalid ConnectionPool config: ${key} must be a number, got ${describe(value)}`)
    }
    checked[key] = value
  }
  if (checked.maxResponseBytes > MAX_REPLY_BYTES) {
    const err = new RangeError(
      `Invalid ConnectionPool config: maxResponseBytes must be at most ${MAX_REPLY_BYTES}, the longest ` +
        `string JavaScript can hold (a reply is handed over as one string), got ${checked.maxResponseBytes}`,
    )
    err.code = 'ERR_OUT_OF_RANGE'
    throw err
  }
  for (const key of ['name', 'host', 'framing']) {
    const value = config[key]
    if (value === undefined) continue
    if (typeof value !== 'string') {
      throw invalidArg(`Invalid ConnectionPool config: ${key} must be a string, got ${describe(value)}`)
    }
    checked[key] = value
  }
  return checked
}

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'string' ? `string ${JSON.stringify(value.slice(0, 40))}` : typeof value
}

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

const LOG_LEVELS = ['debug', 'info', 'warn', 'error']

/** How a host logger takes a record (see `loggerStyle` in index.d.ts). */
const LOGGER_STYLES = ['message-fields', 'fields-message', 'message-error-fields']

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
 * never break a call.
 */
function hostLogSink(logger, style) {
  if (logger === undefined || logger === null) {
    if (style !== undefined)
      throw invalidArg('Invalid ConnectionPool config: loggerStyle is only meaningful with a logger')
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
    const err = new RangeError(
      `Invalid ConnectionPool config: loggerStyle must be one of ${LOGGER_STYLES.join(', ')}, got ${describe(style)}`,
    )
    err.code = 'ERR_OUT_OF_RANGE'
    throw err
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

/**
 * The per-call options `{ signal, timeout }`, checked. `timeout` is in ms, a positive number.
 */
function checkCallOptions(options) {
  if (options === undefined || options === null) return NO_OPTIONS
  if (typeof options !== 'object') {
    throw invalidArg(`options must be an object, got ${describe(options)}`)
  }
  const { signal, timeout } = options
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalidArg(`options.signal must be an AbortSignal, got ${describe(signal)}`)
  }
  if (timeout !== undefined) {
    if (typeof timeout !== 'number') throw invalidArg(`options.timeout must be a number, got ${describe(timeout)}`)
    if (!(timeout > 0) || timeout > 2147483647) {
      const err = new RangeError(`options.timeout must be a positive number of ms up to 2147483647, got ${timeout}`)
      err.code = 'ERR_OUT_OF_RANGE'
      throw err
    }
  }
  return { signal, timeout }
}

const NO_OPTIONS = Object.freeze({ signal: undefined, timeout: undefined })

function abortError(signal) {
  return new AbortError('The operation was aborted', { cause: signal.reason })
}

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
    settle(id, code, text, lease, conn) {
      const call = calls.get(id)
      if (call === undefined) return
      calls.delete(id)
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
      switch (call.kind) {
        case 'json':
          try {
            call.resolve(JSON.parse(text))
          } catch (cause) {
            // The native side validated this text; reaching here is a bug, not a bad reply.
            call.reject(
              new BlenderPoolError('ERR_INTERNAL', `Reply passed validation but not JSON.parse: ${cause.message}`),
            )
          }
          return
        case 'text':
          call.resolve(text)
          return
        case 'lease':
          call.resolve(new PooledConnection(lease, call.table, call.target))
          return
        default:
          call.resolve(undefined)
      }
    },
  }
}

/**
 * Starts one native call on `target` (the native pool or lease) and returns its promise.
 * `begin(id)` starts it and returns the pool's id of the call, which an abort passes to
 * `cancel`. The call's entry holds `target` until it settles: a pool abandoned with a call
 * pending is not collected (and so not shut down) before that call is answered.
 */
function start(table, target, kind, options, begin, cancel, diag = undefined) {
  const { signal } = options
  if (signal?.aborted) {
    const err = abortError(signal)
    if (diag !== undefined) publishOutcome(diag, err.code, null, null)
    return Promise.reject(err)
  }
  return new Promise((resolve, reject) => {
    const entry = { kind, resolve, reject, table, target, diag, signal: undefined, onAbort: undefined }
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
  })
}

/**
 * Sends one command through `target` (the native pool, or a native lease: both have
 * `submit(id, type, body, timeout)` and `cancel(call)`). Arguments are checked first: a bad
 * one rejects without anything being sent.
 */
function command(table, target, kind, type, params, options) {
  let body
  let checked
  try {
    body = encodeRequest(type, params)
    checked = checkCallOptions(options)
  } catch (err) {
    return Promise.reject(err)
  }
  const diag =
    channels.start.hasSubscribers || channels.end.hasSubscribers || channels.error.hasSubscribers
      ? commandStarted(table.pool, type, body)
      : undefined
  return start(
    table,
    target,
    kind,
    checked,
    (id) => target.submit(id, type, body, checked.timeout),
    (call) => target.cancel(call),
    diag,
  )
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

/** A native method threw (a caught Rust panic, most likely): never expected. */
function internalError(cause) {
  if (cause instanceof BlenderPoolError || cause instanceof TypeError || cause instanceof RangeError) return cause
  const err = new BlenderPoolError('ERR_INTERNAL', `Internal error in blender-mcp-pool: ${cause?.message ?? cause}`)
  err.cause = cause
  return err
}

/**
 * A connection leased with `pool.acquire()`. Use `execute` for several commands in a row on the
 * same connection, then give it back with `pool.release(conn)` (or `conn.release()`).
 */
class PooledConnection {
  #lease
  #table
  /** The native pool: a held connection keeps its pool from being collected (and shut down). */
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: held, never read: it keeps the pool alive
  #pool

  constructor(lease, table, pool) {
    this.#lease = lease
    this.#table = table
    this.#pool = pool
  }

  /** `conn-<n>`: unique over the pool's life. */
  get id() {
    return this.#lease.info().id
  }

  /** True until released (or until its connection is lost). */
  get inUse() {
    return this.#lease.info().inUse
  }

  /** When the connection was opened (ms since the epoch). */
  get createdAt() {
    return this.#lease.info().createdAt
  }

  /** When a command last started or finished on it (ms since the epoch). */
  get lastUsedAt() {
    return this.#lease.info().lastUsedAt
  }

  /** Commands this connection has answered over its life. */
  get requestCount() {
    return this.#lease.info().requestCount
  }

  /** Runs one command on this connection. Rejects after release with ERR_CONNECTION_RELEASED. */
  execute(type, params, options) {
    return this.#run('json', type, params, options)
  }

  /** Like `execute`, resolving to the reply's JSON text. */
  executeRaw(type, params, options) {
    return this.#run('text', type, params, options)
  }

  /** Gives the connection back to its pool. Idempotent. */
  release() {
    this.#lease.release()
    return Promise.resolve()
  }

  #run(kind, type, params, options) {
    return command(this.#table, this.#lease, kind, type, params, options)
  }

  /** @internal The native lease, for `ConnectionPool.release`. */
  static lease(conn) {
    return conn.#lease
  }

  toJSON() {
    const { id, inUse, createdAt, lastUsedAt, requestCount } = this.#lease.info()
    return { id, inUse, createdAt, lastUsedAt, requestCount }
  }
}

/** A pool of TCP connections to Blender's MCP add-on. See index.d.ts for the full contract. */
class ConnectionPool {
  #native
  #table

  constructor(config) {
    const checked = checkConfig(config)
    const table = createCallTable(checked.name ?? 'default')
    // Read now, not at import: a .env loaded after this module still counts.
    const env = {
      BLENDER_HOST: process.env.BLENDER_HOST,
      BLENDER_PORT: process.env.BLENDER_PORT,
      SOCKET_TIMEOUT: process.env.SOCKET_TIMEOUT,
      LOG_LEVEL: process.env.LOG_LEVEL,
      LOG_FORMAT: process.env.LOG_FORMAT,
    }
    const log = hostLogSink(config?.logger, config?.loggerStyle)
    this.#native = new native.NativePool(checked, env, table.settle, connectionEvents(table.pool), log)
    this.#table = table
  }

  /** Sends one command and resolves to Blender's parsed reply. */
  execute(type, params, options) {
    return this.#run('json', type, params, options)
  }

  /** Like `execute`, resolving to the reply's JSON text (validated, not parsed). */
  executeRaw(type, params, options) {
    return this.#run('text', type, params, options)
  }

  /** Leases a connection for several commands in a row. */
  acquire(options) {
    let checked
    try {
      checked = checkCallOptions(options)
    } catch (err) {
      return Promise.reject(err)
    }
    const native = this.#native
    return start(
      this.#table,
      native,
      'lease',
      checked,
      (id) => native.acquire(id, checked.timeout),
      (call) => native.cancel(call),
    )
  }

  /** Gives a leased connection back. Idempotent. */
  release(connection) {
    if (!(connection instanceof PooledConnection)) {
      return Promise.reject(
        invalidArg(`release: expected a PooledConnection from acquire(), got ${describe(connection)}`),
      )
    }
    PooledConnection.lease(connection).release()
    return Promise.resolve()
  }

  /** The pool's counts, synchronously. */
  getStats() {
    return this.#native.stats()
  }

  /** Counters and latency percentiles since the pool started. */
  getMetrics() {
    return this.#native.metrics()
  }

  /** The metrics in Prometheus' text exposition format (names prefixed `blender_mcp_pool_`). */
  metricsText() {
    return this.#native.metricsText()
  }

  /** The metrics as Prometheus families, each sample labelled with this pool's `name`. */
  metricFamilies() {
    return this.#native.metricFamilies()
  }

  /** The configuration in force, defaults and environment applied. */
  get config() {
    return this.#native.config()
  }

  /** Rejects waiting callers, lets in-flight requests finish, closes every socket. Idempotent. */
  shutdown() {
    const native = this.#native
    return start(this.#table, native, 'void', NO_OPTIONS, (id) => native.shutdown(id))
  }

  #run(kind, type, params, options) {
    return command(this.#table, this.#native, kind, type, params, options)
  }
}

/**
 * Where the shared pools (getConnectionPool()'s, and those the socket client opens for other
 * addresses) differ from `new ConnectionPool()`: replies are capped at the server's own socket
 * client's 50 MB, since they carry that client's traffic.
 */
const SHARED_DEFAULTS = Object.freeze({ maxResponseBytes: 50 * 1024 * 1024 })

let defaultPool = null
/** The options of the shared pools, set once by configureConnectionPool() or on first use. */
let sharedConfig = null

/** The pool of this JS context (main thread or worker), configured from the environment. */
function getConnectionPool() {
  if (defaultPool === null) configureConnectionPool()
  return defaultPool
}

/**
 * Configures the shared pools once, before their first use, and returns getConnectionPool()'s
 * pool (created here, so a bad option throws here). Throws ERR_POOL_ALREADY_CONFIGURED after
 * a first getConnectionPool(), socket-client call or configureConnectionPool().
 */
function configureConnectionPool(config) {
  if (sharedConfig !== null) {
    const err = new Error(
      'configureConnectionPool: the shared pool is already configured or in use; ' +
        'call it once, before the first getConnectionPool() or socket-client call',
    )
    err.code = 'ERR_POOL_ALREADY_CONFIGURED'
    throw err
  }
  checkConfig(config)
  const options = { ...SHARED_DEFAULTS, ...config }
  defaultPool = new ConnectionPool(options)
  sharedConfig = options
  return defaultPool
}

/** For socket-client.js only: the shared pools' options and the default pool, if created. */
function sharedPools() {
  return { defaultPool, config: sharedConfig ?? SHARED_DEFAULTS }
}

module.exports = {
  registerPoolMetrics: require('./prom-client.js').registerPoolMetrics,
  ConnectionPool,
  PooledConnection,
  BlenderPoolError,
  AbortError,
  MutexTimeoutError,
  getConnectionPool,
  configureConnectionPool,
}
// Not part of the API: how the socket client (socket-client.js) finds the shared pools.
Object.defineProperty(module.exports, Symbol.for('blender-mcp-pool.sharedPools'), { value: sharedPools })
