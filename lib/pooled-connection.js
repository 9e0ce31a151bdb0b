'use strict'
// A connection leased with `pool.acquire()`.

const { REPLY, command } = require('./calls.js')

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
    return command(this.#table, this.#lease, REPLY.json, type, params, options)
  }

  /** Like `execute`, resolving to the reply's JSON text. */
  executeRaw(type, params, options) {
    return command(this.#table, this.#lease, REPLY.text, type, params, options)
  }

  /** Gives the connection back to its pool. Idempotent. */
  release() {
    this.#lease.release()
    return Promise.resolve()
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

module.exports = { PooledConnection }
