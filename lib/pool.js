'use strict'
// ConnectionPool: the JavaScript face of the native pool. What lives here is what JavaScript
// does best (argument checks, promises); sockets, framing, queueing and timeouts are in Rust
// (src/ and core/src/).

const { REPLY, command, createCallTable, start } = require('./calls.js')
const { connectionEvents } = require('./diagnostics.js')
const { describe, invalidArg } = require('./errors.js')
const { native } = require('./loader.js')
const { hostLogSink } = require('./logging.js')
const { NO_OPTIONS, checkCallOptions, checkConfig } = require('./options.js')
const { PooledConnection } = require('./pooled-connection.js')

/** A pool of TCP connections to Blender's MCP add-on. See index.d.ts for the full contract. */
class ConnectionPool {
  #native
  #table

  constructor(config) {
    const { logger, loggerStyle, ...options } = checkConfig(config)
    const table = createCallTable(options.name ?? 'default')
    // Read now, not at import: a .env loaded after this module still counts.
    const env = {
      BLENDER_HOST: process.env.BLENDER_HOST,
      BLENDER_PORT: process.env.BLENDER_PORT,
      SOCKET_TIMEOUT: process.env.SOCKET_TIMEOUT,
      LOG_LEVEL: process.env.LOG_LEVEL,
      LOG_FORMAT: process.env.LOG_FORMAT,
    }
    const log = hostLogSink(logger, loggerStyle)
    this.#native = new native.NativePool(options, env, table.settle, connectionEvents(table.pool), log)
    this.#table = table
  }

  /** Sends one command and resolves to Blender's parsed reply. */
  execute(type, params, options) {
    return command(this.#table, this.#native, REPLY.json, type, params, options)
  }

  /** Like `execute`, resolving to the reply's JSON text (validated, not parsed). */
  executeRaw(type, params, options) {
    return command(this.#table, this.#native, REPLY.text, type, params, options)
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
    const table = this.#table
    return start(
      table,
      native,
      (_text, lease) => new PooledConnection(lease, table, native),
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

  /** The configuration in force, defaults and environment applied (the logger's options aside). */
  get config() {
    return this.#native.config()
  }

  /** Rejects waiting callers, lets in-flight requests finish, closes every socket. Idempotent. */
  shutdown() {
    const native = this.#native
    return start(this.#table, native, REPLY.none, NO_OPTIONS, (id) => native.shutdown(id))
  }
}

module.exports = { ConnectionPool }
