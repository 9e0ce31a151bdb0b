'use strict'
// blender-mcp-pool/socket-client: a drop-in for the ClaudeKit server's src/utils/socket-client.ts.
//
// Same exports, constructor and methods, same error messages; but every command runs on the
// shared pool of its host:port instead of the one socket the original holds for the whole
// process, so concurrent tool calls each get their own reply and a big reply no longer blocks
// the event loop. The server replaces that file's body with
//
//     export * from 'blender-mcp-pool/socket-client'
//
// Clients of the default address (BLENDER_HOST/BLENDER_PORT) share getConnectionPool()'s pool;
// clients of another address share one pool per address, shut down when its last client
// disconnects.

const { BlenderPoolError } = require('./errors.js')
const { ConnectionPool } = require('./pool.js')
const { getConnectionPool, sharedPools } = require('./shared-pools.js')

/** The server's SOCKET_TIMEOUT default (its constants.ts), in ms. */
const DEFAULT_TIMEOUT = 180000

/**
 * A reply larger than the shared pool's `maxResponseBytes` (50 MB unless configured). Thrown
 * by `sendCommand` with `code` ERR_RESPONSE_TOO_LARGE; the reply was not buffered past the cap.
 */
class BufferOverflowError extends Error {
  constructor(totalBytes, maxSize, chunkCount) {
    super(`Buffer exceeded maximum size: ${maxSize} bytes (received ${totalBytes} bytes after ${chunkCount} chunks)`)
    this.name = 'BufferOverflowError'
    this.code = 'ERR_RESPONSE_TOO_LARGE'
    this.totalBytes = totalBytes
    this.maxSize = maxSize
    this.chunkCount = chunkCount
  }
}

/**
 * Kept for compatibility: the original failed a reply that came in over 10,000 chunks, a guard
 * against its own quadratic re-parsing. The pool frames replies in linear time, so this is
 * never thrown; `instanceof` checks stay valid.
 */
class ChunkCountExceededError extends Error {
  constructor(chunkCount, maxChunks) {
    super(`Exceeded maximum chunk count: ${maxChunks} (received ${chunkCount} chunks)`)
    this.name = 'ChunkCountExceededError'
    this.chunkCount = chunkCount
    this.maxChunks = maxChunks
  }
}

/** `options` without its `undefined` entries (an option given as undefined is not given). */
function definedOnly(options) {
  if (options === undefined || options === null || typeof options !== 'object') return options
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined))
}

/** The pools of addresses other than the default one: `host:port` -> { pool, clients }. */
const otherPools = new Map()

const addressKey = (host, port) => `${host}:${port}`

/** Where getConnectionPool()'s pool points, or will point once created. */
function defaultAddress() {
  const { defaultPool } = sharedPools()
  if (defaultPool !== null) return addressKey(defaultPool.config.host, defaultPool.config.port)
  return addressKey(envHost(), envPort())
}

// The server's own defaults (its constants.ts): an empty BLENDER_HOST means localhost.
const envHost = () => process.env.BLENDER_HOST || 'localhost'
const envPort = () => parseInt(process.env.BLENDER_PORT || '9876', 10)

function envTimeout() {
  const raw = process.env.SOCKET_TIMEOUT
  const value = raw ? Number(raw) : NaN
  return Number.isInteger(value) && value >= 1000 && value <= 600000 ? value : DEFAULT_TIMEOUT
}

function argError(Kind, code, message) {
  const err = new Kind(message)
  err.code = code
  return err
}

/** The pool's error, worded as the server's client worded it; the code stays, `cause` is the original. */
function commandError(err, pool) {
  if (!(err instanceof BlenderPoolError)) return err
  switch (err.code) {
    case 'ERR_RESPONSE_TIMEOUT':
      return reworded(
        err,
        withDetail(
          'Response timeout - no complete JSON received within timeout period',
          'Response timeout',
          err.message,
        ),
      )
    case 'ERR_CONNECTION_CLOSED':
      return reworded(err, withDetail('Connection closed before complete response', 'Connection closed', err.message))
    case 'ERR_RESPONSE_TOO_LARGE': {
      // The pool stops reading at the cap and counts no chunks: the least the reply can have been.
      const maxSize = pool.config.maxResponseBytes
      const overflow = new BufferOverflowError(maxSize + 1, maxSize, 0)
      overflow.message = `Buffer exceeded maximum size: ${maxSize} bytes (${err.message})`
      overflow.cause = err
      return overflow
    }
    default:
      return err
  }
}

const CONNECT_PREFIX = 'Failed to connect to Blender: '

/** `connect()`'s failure: the server's "Failed to connect to Blender: ..." whatever the code. */
function connectError(err) {
  if (!(err instanceof BlenderPoolError) || err.message.startsWith(CONNECT_PREFIX)) return err
  return reworded(err, CONNECT_PREFIX + err.message)
}

/** `server`, then the pool's detail: what follows `poolPrefix` in `poolMessage`, or all of it. */
function withDetail(server, poolPrefix, poolMessage) {
  if (!poolMessage.startsWith(poolPrefix)) return `${server} (${poolMessage})`
  const rest = poolMessage.slice(poolPrefix.length).trim()
  return rest ? `${server} ${rest}` : server
}

function reworded(err, message) {
  const out = new BlenderPoolError(err.code, message)
  out.cause = err
  return out
}

/**
 * A client of Blender's add-on, with the surface of the server's `BlenderSocketClient`. Its
 * commands run on the shared pool of its address; it holds no socket of its own.
 */
class BlenderSocketClient {
  /** null: the default address (getConnectionPool()'s pool). */
  #address
  #host
  #port
  #timeout
  /** The other-address pool entry this client holds, between first use and disconnect(). */
  #held = null

  constructor(host, port, timeout) {
    if (host !== undefined && (typeof host !== 'string' || host === '')) {
      throw argError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `BlenderSocketClient: host must be a non-empty string, got ${typeof host}`,
      )
    }
    if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) {
      throw argError(
        RangeError,
        'ERR_OUT_OF_RANGE',
        `BlenderSocketClient: port must be a whole number from 1 to 65535, got ${port}`,
      )
    }
    if (timeout !== undefined && !(typeof timeout === 'number' && timeout > 0 && timeout <= 2147483647)) {
      throw argError(
        RangeError,
        'ERR_OUT_OF_RANGE',
        `BlenderSocketClient: timeout must be a positive number of ms up to 2147483647, got ${timeout}`,
      )
    }
    const explicit = host !== undefined || port !== undefined
    this.#host = host ?? envHost()
    this.#port = port ?? envPort()
    this.#address = explicit ? addressKey(this.#host, this.#port) : null
    this.#timeout = timeout ?? envTimeout()
  }

  /**
   * Resolves once Blender is reachable: at once if the pool has an open connection, else once
   * one opens. Rejects with "Failed to connect to Blender: ..." and the pool's code.
   */
  async connect() {
    const pool = this.#pool()
    if (pool.getStats().totalConnections > 0) return
    try {
      const connection = await pool.acquire({ timeout: this.#timeout })
      await connection.release()
    } catch (err) {
      // Every connection busy with other commands: Blender is reachable all the same.
      if (err?.code === 'ERR_POOL_TIMEOUT' && pool.getStats().totalConnections > 0) return
      throw connectError(err)
    }
  }

  /**
   * Sends one command on the shared pool and resolves to Blender's reply. `options` are the
   * pool's per-call options (`signal`, `timeout`, `onProgress`, `progressInterval`); `timeout`
   * defaults to the client's. For an MCP tool handler: `sendCommand(type, params,
   * mcpCallOptions(extra))`.
   */
  async sendCommand(type, params, options = undefined) {
    const pool = this.#pool()
    try {
      return await pool.execute(type, params, { timeout: this.#timeout, ...definedOnly(options) })
    } catch (err) {
      throw commandError(err, pool)
    }
  }

  /** True while the pool of this client's address has an open connection. */
  validateConnection() {
    const pool = this.#existingPool()
    return pool !== null && pool.getStats().totalConnections > 0
  }

  /**
   * Lets go of what this client holds: its share of an other-address pool, which closes once no
   * client holds it (its requests in flight finish first). Never closes getConnectionPool()'s
   * pool. The client stays usable: its next command takes a share again.
   */
  async disconnect() {
    const held = this.#held
    this.#held = null
    if (held === null || --held.clients > 0) return
    if (otherPools.get(held.key) === held) otherPools.delete(held.key)
    await held.pool.shutdown()
  }

  /** The pool this client's commands run on, created (and a share taken) on first use. */
  #pool() {
    if (this.#isDefault()) return getConnectionPool()
    if (this.#held !== null) return this.#held.pool
    const key = this.#address
    let entry = otherPools.get(key)
    if (entry === undefined) {
      const { config } = sharedPools()
      entry = { key, pool: new ConnectionPool({ ...config, host: this.#host, port: this.#port }), clients: 0 }
      otherPools.set(key, entry)
    }
    entry.clients++
    this.#held = entry
    return entry.pool
  }

  /** The pool of this client's address if it exists (nothing is created). */
  #existingPool() {
    if (this.#isDefault()) return sharedPools().defaultPool
    return otherPools.get(this.#address)?.pool ?? null
  }

  #isDefault() {
    return this.#address === null || this.#address === defaultAddress()
  }
}

let clientInstance = null

/** The process's client (one per JS context), of the default address. */
function getBlenderClient() {
  if (clientInstance === null) clientInstance = new BlenderSocketClient()
  return clientInstance
}

module.exports = {
  BlenderSocketClient,
  BufferOverflowError,
  ChunkCountExceededError,
  getBlenderClient,
}
