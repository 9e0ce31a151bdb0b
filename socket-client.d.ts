/**
 * `blender-mcp-pool/socket-client`: a drop-in for the ClaudeKit Blender MCP server's
 * `src/utils/socket-client.ts`. Replace that file's body with
 *
 * ```ts
 * export * from 'blender-mcp-pool/socket-client'
 * ```
 *
 * Same exports, constructor, methods and error messages. Every command runs on the shared pool
 * of the client's host:port (clients of the default address share `getConnectionPool()`'s
 * pool), so concurrent tool calls each get their own reply on their own connection.
 *
 * Rejections of `sendCommand` and `connect` are `BlenderPoolError`s (or a
 * {@link BufferOverflowError}) with the pool's `code`, which tells whether the command may have
 * run in Blender:
 * - never sent: `ERR_CONNECT` (Blender unreachable), `ERR_POOL_TIMEOUT` (no connection became
 *   free in time), `ERR_POOL_SHUTDOWN`;
 * - sent, so it may have run: `ERR_RESPONSE_TIMEOUT`, `ERR_CONNECTION_CLOSED`,
 *   `ERR_INVALID_RESPONSE`, `ERR_RESPONSE_TOO_LARGE`.
 * Bad arguments reject with a `TypeError` before anything is sent.
 *
 * @packageDocumentation
 */

import type { BlenderSocketResponse, CallOptions, McpHandlerExtra } from './index.js'

/**
 * A reply larger than the shared pool's `maxResponseBytes` (50 MB, the server's cap, unless set
 * with `configureConnectionPool`). The reply is not buffered past the cap and its connection
 * is discarded. Thrown by `sendCommand` with `totalBytes` = `maxSize + 1` (the least the reply
 * was: the pool stops reading there) and `chunkCount` = 0 (the pool counts no chunks).
 */
export declare class BufferOverflowError extends Error {
  /** @param totalBytes bytes received; @param maxSize the cap; @param chunkCount reads made. */
  constructor(totalBytes: number, maxSize: number, chunkCount: number)
  /** Always `'BufferOverflowError'`. */
  readonly name: 'BufferOverflowError'
  /** Always `'ERR_RESPONSE_TOO_LARGE'`, the pool's code for it. */
  readonly code: 'ERR_RESPONSE_TOO_LARGE'
  /** Bytes of the reply received when it was refused (at least `maxSize + 1`). */
  readonly totalBytes: number
  /** The cap, in bytes. */
  readonly maxSize: number
  /** Reads that delivered the reply (0 when thrown by this client: not counted). */
  readonly chunkCount: number
}

/**
 * Exported for compatibility: the original refused a reply that came in over 10,000 chunks, a
 * guard against its own quadratic re-parsing. Replies are framed in linear time here, so it is
 * **never thrown**; `instanceof ChunkCountExceededError` checks stay valid.
 */
export declare class ChunkCountExceededError extends Error {
  /** @param chunkCount reads made; @param maxChunks the limit. */
  constructor(chunkCount: number, maxChunks: number)
  /** Always `'ChunkCountExceededError'`. */
  readonly name: 'ChunkCountExceededError'
  /** Reads made when the limit was passed. */
  readonly chunkCount: number
  /** The limit. */
  readonly maxChunks: number
}

/**
 * A client of Blender's add-on with the server's `BlenderSocketClient` surface. It holds no
 * socket: its commands run on the shared pool of its host:port, created on first use.
 */
export declare class BlenderSocketClient {
  /**
   * @param host Blender's host. Default: `BLENDER_HOST`, else `localhost`.
   * @param port Blender's port, 1 to 65535. Default: `BLENDER_PORT`, else 9876.
   * @param timeout The reply timeout of each command, in ms: the call's deadline once sent
   *   (the pool's `socketTimeout` also applies). Default: `SOCKET_TIMEOUT`, else 180000.
   *
   * A client given neither `host` nor `port`, or the default pool's own address, runs on
   * `getConnectionPool()`'s pool. Another address gets a pool shared by that address's
   * clients, with the options given to `configureConnectionPool`. Throws a `TypeError` or
   * `RangeError` for an unusable argument.
   */
  constructor(host?: string, port?: number, timeout?: number)
  /**
   * Resolves once Blender is reachable: at once while the pool has an open connection, else
   * when one opens. Rejects with a `BlenderPoolError` whose message starts
   * `Failed to connect to Blender: ` (code `ERR_CONNECT` when Blender is unreachable).
   */
  connect(): Promise<void>
  /**
   * Sends one command and resolves to Blender's reply, which may be a `status: 'error'` reply
   * (Blender's answer, not a transport failure). Connects as needed. Rejects with a
   * `BlenderPoolError` (messages as the server's: `Response timeout - ...`,
   * `Connection closed before complete response`, `Failed to connect to Blender: ...`) or a
   * {@link BufferOverflowError}; see the module's notes for what each code says. `options` are
   * the pool's per-call options (`signal`, `timeout` (default: the client's), `onProgress`,
   * `progressInterval`); an aborted call rejects at once with an `AbortError`, and its
   * connection is discarded. In an MCP tool handler: `sendCommand(type, params,
   * mcpCallOptions(extra))`.
   */
  sendCommand(type: string, params?: Record<string, unknown>, options?: CallOptions): Promise<BlenderSocketResponse>
  /** True while the pool of this client's address has an open connection. Creates nothing. */
  validateConnection(): boolean
  /**
   * Lets go of what this client holds: its share of an other-address pool, which shuts down
   * (requests in flight finish first) once no client holds it. Never shuts down
   * `getConnectionPool()`'s pool: the tools keep working while a health check's client
   * disconnects. The client stays usable afterwards.
   */
  disconnect(): Promise<void>
}

/** The client of this JS context (a singleton), of the default address. */
export declare function getBlenderClient(): BlenderSocketClient

/**
 * The options of a call made for an MCP tool handler, from its `extra`: see
 * `mcpCallOptions` of `blender-mcp-pool`, the same function.
 */
export declare function mcpCallOptions(extra: McpHandlerExtra | undefined, options?: CallOptions): CallOptions
