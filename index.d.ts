/**
 * blender-mcp-pool: a native (Rust) drop-in replacement for the ClaudeKit Blender MCP server's
 * `ConnectionPool`. Same names and behaviour a caller relies on; see docs/api.md for what changed.
 *
 * @packageDocumentation
 */

/** A command sent to Blender's add-on: serialised as `JSON.stringify({type, params}) + "\n"`. */
export interface BlenderSocketMessage {
  /** The command type, e.g. `get_scene_info`. */
  type: string
  /** The command's parameters; absent when not given. */
  params?: Record<string, unknown>
}

/** Blender's reply to one command. */
export interface BlenderSocketResponse {
  /** `success` or `error`; any other reply is rejected with `ERR_INVALID_RESPONSE`. */
  status: 'success' | 'error'
  /** The command's result, on success. */
  result?: unknown
  /** What went wrong, on error. Always a string when present. */
  message?: string
}

/**
 * Pool options. Every field is optional in the constructor, and one given as `undefined` is not
 * given; an unknown field throws a `TypeError` naming it. Durations are in milliseconds and
 * must be whole numbers from 1 to 2147483647 (a JavaScript timer's range). The one list of
 * options, with ranges and environment variables: docs/configuration.md.
 */
export interface ConnectionPoolConfig {
  /** Connections kept open even when idle, opened in the background. Default: 1. */
  minConnections: number
  /** Hard cap on open plus opening sockets. Default: 5. */
  maxConnections: number
  /**
   * Bounds one connect attempt that hangs (a host that drops packets), and how long a caller
   * waits for a free connection when every connection is busy. Default: 30000.
   */
  connectionTimeout: number
  /**
   * How long a caller is held while Blender is unreachable (refused or unreachable connects):
   * connects are retried meanwhile, at most 250 ms apart, then the call fails with
   * `ERR_CONNECT`. `0`: the call fails with the first connect attempt made for it.
   * Whole milliseconds from 0 to 2147483647. Default: 2000.
   */
  connectRetryTimeout: number
  /** An idle connection above `minConnections` closes after this long unused. Default: 60000. */
  idleTimeout: number
  /** A connection is closed and replaced after serving this many requests. Default: 1000. */
  maxRequestsPerConnection: number
  /** Period of the background top-up to `minConnections`. Default: 30000. */
  healthCheckInterval: number
  /**
   * Accepted for compatibility and ignored: the original guarded its state with an async mutex
   * that could time out; this pool has none. Default: 30000.
   */
  mutexTimeout: number
  /** Blender's host. Default: `BLENDER_HOST`, else `localhost`. */
  host: string
  /** Blender's port, 1 to 65535. Default: `BLENDER_PORT`, else 9876. */
  port: number
  /**
   * Reply timeout, restarted whenever bytes arrive (so a long reply that keeps flowing never
   * times out). Default: `SOCKET_TIMEOUT`, else 180000.
   */
  socketTimeout: number
  /**
   * A reply whose body (leading whitespace and length prefix aside) is larger than this fails
   * with `ERR_RESPONSE_TOO_LARGE`. At most `buffer.constants.MAX_STRING_LENGTH` (536870888 on
   * 64-bit Node): a reply is handed to JavaScript as one string. Default: 67108864 (64 MiB).
   */
  maxResponseBytes: number
  /**
   * A connection is closed and replaced (at its next idle moment) after this long, less up to
   * 10% jitter so connections opened together do not retire together. `0` disables it.
   * Default: 1800000 (30 min).
   */
  maxLifetime: number
  /**
   * A new connection is watched this long before its first request, and again after its first
   * reply before it is reused: a server that greets each connection, or closes after each
   * reply, is found then, before any caller takes its bytes for a reply or writes into a closed
   * connection. Once a connection came through clean, later ones are not watched until
   * something out of step is seen (a close or bytes while idle): Blender's add-on never speaks
   * first, so with it this delays a caller at most once. `0` disables it. Default: 25.
   */
  newConnectionSettle: number
  /**
   * How messages are delimited. `'json'`: request JSON + `\n`, reply a bare JSON object (the
   * classic add-on). `'length-prefixed'`: every message, both ways, is a 4-byte big-endian
   * length then that many bytes of JSON (newer add-ons); a reply whose length prefix exceeds
   * `maxResponseBytes` is refused at once. Default: `'json'`.
   */
  framing: 'json' | 'length-prefixed'
  /**
   * The host's logger. When given, every record of this pool goes to it instead of stderr, in
   * the logger's own convention (see `loggerStyle`); the fields are flat: `pool` (id),
   * `poolName`, connection ids, command types, sizes, timings and codes, never request or reply
   * bodies. Records below `LOG_LEVEL` (read when the pool is created; default `warn`) are not
   * produced at all. A logger that throws is ignored. pino and bunyan loggers can be passed as
   * they are. Not set by default.
   */
  logger: PoolLogger
  /**
   * How `logger` takes a record. Detected when not given: `'fields-message'` for pino and
   * bunyan (`logger.info(fields, message)`); `'message-error-fields'` for a logger whose
   * `error` declares three parameters, like the ClaudeKit server's
   * `error(message, error?, context?)` (it gets `error(message, undefined, fields)`, the
   * others `(message, fields)`); `'message-fields'` otherwise.
   */
  loggerStyle: LoggerStyle
  /**
   * The pool's name: the `pool` label of its Prometheus metrics, the `poolName` of its log
   * records and the `pool` of its diagnostics messages. 1 to 100 characters. Default:
   * `'default'`.
   */
  name: string
}

/**
 * `pool.config`: the options in force, defaults and environment applied. Every option but the
 * logger's two, which the pool does not keep as options.
 */
export type ResolvedPoolConfig = Omit<ConnectionPoolConfig, 'logger' | 'loggerStyle'>

/** The calling conventions a host logger can have (see `ConnectionPoolConfig.loggerStyle`). */
export type LoggerStyle = 'message-fields' | 'fields-message' | 'message-error-fields'

/**
 * A host logger: four methods. Their arguments depend on `loggerStyle`: `(message, fields)`,
 * `(fields, message)` (pino, bunyan), or `(message, fields)` with `error(message, undefined,
 * fields)` (the ClaudeKit server's logger).
 */
export interface PoolLogger {
  /** Per-request detail (with `LOG_LEVEL=debug`). */
  // biome-ignore lint/suspicious/noExplicitAny: a logger's own parameter types must be assignable here
  debug(...args: any[]): unknown
  /** Lifecycle: shutdown, Blender reachable again. */
  // biome-ignore lint/suspicious/noExplicitAny: a logger's own parameter types must be assignable here
  info(...args: any[]): unknown
  /** Failures the pool recovered from: Blender unreachable, bad replies, timeouts. */
  // biome-ignore lint/suspicious/noExplicitAny: a logger's own parameter types must be assignable here
  warn(...args: any[]): unknown
  /** Panics and internal errors: bugs of the pool, please report them. */
  // biome-ignore lint/suspicious/noExplicitAny: a logger's own parameter types must be assignable here
  error(...args: any[]): unknown
}

/** Options of one call. */
export interface CallOptions {
  /**
   * Aborts the call: a call waiting for a connection leaves the queue (nothing is sent); a call
   * in flight has its connection discarded. Either rejects with an {@link AbortError} whose
   * `cause` is the signal's reason. An already-aborted signal rejects at once, sending nothing.
   */
  signal?: AbortSignal
  /**
   * The call's own deadline in ms, counted from the call. Past it, a call still waiting for a
   * connection rejects with `ERR_POOL_TIMEOUT` (nothing was sent) and a call in flight with
   * `ERR_RESPONSE_TIMEOUT` (its connection is discarded). `socketTimeout` and
   * `connectionTimeout` still apply.
   */
  timeout?: number
  /**
   * Called while the call is outstanding: every `progressInterval` ms, and as reply bytes arrive
   * (at most every 250 ms). Never after the call settles. A callback that throws is ignored: the
   * call goes on. A call without it costs nothing more. For an MCP tool handler, see
   * {@link mcpCallOptions}.
   */
  onProgress?: (info: ProgressInfo) => void
  /** Ms between two `onProgress` reports while the call waits. Default: 2000. */
  progressInterval?: number
}

/** Where a call stands, as `onProgress` is told. */
export interface ProgressInfo {
  /**
   * `waiting`: for a connection (every one is busy, or being opened); `sent`: no byte of the
   * reply yet (Blender is running the command, or another one before it); `receiving`: the
   * reply is arriving.
   */
  phase: 'waiting' | 'sent' | 'receiving'
  /** Ms since the call was made. */
  elapsedMs: number
  /** Ms spent in the current phase. */
  phaseMs: number
  /** Bytes of the reply received so far (0 before `receiving`). */
  bytesReceived: number
  /**
   * The command keeping Blender busy ahead of this call, if one is: Blender runs one command at
   * a time, whatever the number of connections. This pool's oldest request still waiting for its
   * reply, sent before this one. Always null while `receiving`.
   */
  busy: { command: string; runningMs: number } | null
}

/**
 * What an MCP tool handler is given as `extra` (the MCP SDK's `RequestHandlerExtra`), as far as
 * {@link mcpCallOptions} uses it. Declared here so that nothing depends on the SDK.
 */
export interface McpHandlerExtra {
  /** Fires when the client cancels the request (`notifications/cancelled`). */
  signal?: AbortSignal
  /** The request's `_meta`: `progressToken` when the client asked for progress. */
  _meta?: { progressToken?: string | number; [key: string]: unknown }
  /** Sends a notification related to the request. */
  // biome-ignore lint/suspicious/noExplicitAny: the SDK's own notification type is not imported
  sendNotification?: (notification: { method: 'notifications/progress'; params: any }) => Promise<void> | void
}

/**
 * The options of a call made for an MCP tool handler, from its `extra`: the client's cancel
 * aborts the call (its connection is discarded, the next call gets a fresh one), and the call's
 * progress is sent as `notifications/progress` with the request's progress token and a short
 * message (`waiting for Blender: "render_scene" running for 95 s`), which keeps a client that
 * restarts its timeout on progress waiting. Without a token no notification is sent. `options`
 * are merged in (`progressInterval`, `timeout`).
 *
 * ```ts
 * server.setRequestHandler(CallToolRequestSchema, async (request, extra) =>
 *   getBlenderClient().sendCommand('render_scene', params, mcpCallOptions(extra)))
 * ```
 */
export declare function mcpCallOptions(extra: McpHandlerExtra | undefined, options?: CallOptions): CallOptions

/** `getStats()`. The first five fields mean what they meant in the original pool. */
export interface PoolStats {
  /** Open connections, idle or in use (connects in progress not counted). */
  totalConnections: number
  /** Connections running a command or leased with `acquire()`. */
  activeConnections: number
  /** Open connections that are free. */
  idleConnections: number
  /** Callers waiting for a connection. */
  pendingRequests: number
  /** Requests answered with a valid reply over the pool's life (status `error` included). */
  totalRequests: number
  /** Connects in progress. */
  openingConnections: number
  /**
   * Sockets not yet closed: open connections plus discarded ones still being torn down.
   * `openSockets + openingConnections` never exceeds `maxConnections`.
   */
  openSockets: number
  /** Requests that failed after being sent: timeout, connection closed, invalid reply. */
  failedRequests: number
  /** Connections opened over the pool's life. */
  connectionsOpened: number
  /** Connect attempts that failed over the pool's life. */
  connectFailures: number
}

/**
 * One latency, in ms, to the microsecond. Percentiles are histogram bucket bounds (within
 * 12.5% above the truth), never above the largest sample.
 */
export interface LatencySummary {
  /** Samples recorded. */
  count: number
  /** Sum of the samples, ms. */
  sumMs: number
  /** The largest sample, ms. */
  max: number
  /** Median, ms. */
  p50: number
  /** 90th percentile, ms. */
  p90: number
  /** 99th percentile, ms. */
  p99: number
}

/** `getMetrics()`: everything counted since the pool started. */
export interface PoolMetrics {
  /** Commands submitted (`execute`, `executeRaw`, `PooledConnection.execute`). */
  requests: number
  /** Commands answered with a valid reply (a `status: 'error'` reply included). */
  successes: number
  /** Failed commands by error code; every code is present, zeros included. */
  failures: Record<BlenderPoolErrorCode, number>
  /** Connections opened. */
  connects: number
  /** Connect attempts that failed. */
  connectFailures: number
  /** Connect attempts made as retries while Blender was unreachable. */
  retries: number
  /** `ERR_RESPONSE_TIMEOUT` plus `ERR_POOL_TIMEOUT`. */
  timeouts: number
  /** Calls that had to wait for a connection. */
  waits: number
  /** Commands aborted by their `AbortSignal` after being submitted. */
  aborts: number
  /** Time from submitting a command to its outcome (measured in the I/O layer). */
  executeLatency: LatencySummary
  /** Time callers that had to wait spent waiting for a connection. */
  waitLatency: LatencySummary
}

/** Stable codes of {@link BlenderPoolError}. */
export type BlenderPoolErrorCode =
  /** No connection became free within `connectionTimeout`. */
  | 'ERR_POOL_TIMEOUT'
  /**
   * Blender could not be reached: connects were refused or failed for `connectRetryTimeout`
   * (retried meanwhile), or one hung for `connectionTimeout`. The message names host:port and
   * what to do.
   */
  | 'ERR_CONNECT'
  /** No byte from Blender for `socketTimeout` while a reply was due. */
  | 'ERR_RESPONSE_TIMEOUT'
  /** The connection closed (or a write failed) before the reply was complete. */
  | 'ERR_CONNECTION_CLOSED'
  /** The reply was not UTF-8 JSON, not an object, or had a bad `status`/`message`. */
  | 'ERR_INVALID_RESPONSE'
  /** The reply exceeded `maxResponseBytes`. */
  | 'ERR_RESPONSE_TOO_LARGE'
  /** The pool is shut down (or shutting down). */
  | 'ERR_POOL_SHUTDOWN'
  /** A `PooledConnection` was used after release. */
  | 'ERR_CONNECTION_RELEASED'
  /** A `PooledConnection` was asked to run a command while running another. */
  | 'ERR_CONNECTION_BUSY'
  /** The call was aborted through its `AbortSignal` (the error is an {@link AbortError}). */
  | 'ABORT_ERR'
  /** A bug in the pool; please report it. */
  | 'ERR_INTERNAL'

/** Every rejection of the pool's calls (bad arguments aside, which are `TypeError`s). */
export declare class BlenderPoolError extends Error {
  /** `'BlenderPoolError'`, or `'AbortError'` for an {@link AbortError}. */
  readonly name: 'BlenderPoolError' | 'AbortError'
  /** What went wrong, stable across versions. */
  readonly code: BlenderPoolErrorCode
}

/** A call aborted through its `AbortSignal`. */
export declare class AbortError extends BlenderPoolError {
  /** Always `'AbortError'`. */
  readonly name: 'AbortError'
  /** Always `'ABORT_ERR'`. */
  readonly code: 'ABORT_ERR'
}

/**
 * Exported for compatibility: code written for the original pool may test
 * `err instanceof MutexTimeoutError`. This pool has no async mutex, so it **never throws it**.
 */
export declare class MutexTimeoutError extends Error {
  /** @param operation what was waiting; @param timeoutMs how long it waited. */
  constructor(operation: string, timeoutMs: number)
}

/**
 * A connection leased with {@link ConnectionPool.acquire}. It never exposes its socket. Run
 * commands with {@link PooledConnection.execute}, then give it back with
 * {@link ConnectionPool.release} or {@link PooledConnection.release}. After release, `execute`
 * rejects with `ERR_CONNECTION_RELEASED`.
 */
export declare class PooledConnection {
  private constructor()
  /** `conn-<n>`, unique over the pool's life. */
  readonly id: string
  /** True until released, or until its connection is lost. */
  readonly inUse: boolean
  /** When the connection was opened, in ms since the epoch. */
  readonly createdAt: number
  /** When a command last started or finished on it, in ms since the epoch. */
  readonly lastUsedAt: number
  /** Commands this connection has answered over its life. */
  readonly requestCount: number
  /**
   * Runs one command on this connection. One at a time: a second call while one runs rejects
   * with `ERR_CONNECTION_BUSY`.
   */
  execute(type: string, params?: Record<string, unknown>, options?: CallOptions): Promise<BlenderSocketResponse>
  /** Like `execute`, resolving to the reply's JSON text (validated, not parsed). */
  executeRaw(type: string, params?: Record<string, unknown>, options?: CallOptions): Promise<string>
  /** Gives the connection back to its pool. Idempotent. */
  release(): Promise<void>
  /** The fields above as a plain object. */
  toJSON(): { id: string; inUse: boolean; createdAt: number; lastUsedAt: number; requestCount: number }
}

/** A pool of TCP connections to Blender's MCP add-on. */
export declare class ConnectionPool {
  /**
   * Creates the pool and opens `minConnections` in the background. Never fails because Blender
   * is down. Throws `TypeError` (`ERR_INVALID_ARG_TYPE`) or `RangeError` (`ERR_OUT_OF_RANGE`)
   * naming the field when an option is unusable.
   */
  constructor(config?: Partial<ConnectionPoolConfig>)
  /**
   * Sends one command on a free connection and resolves to Blender's reply (which may be a
   * `status: 'error'` reply: that is Blender's answer, not a pool failure). Rejects with a
   * {@link BlenderPoolError}, or with a `TypeError` before sending anything when `type` is not
   * a non-empty string or `params` is not a JSON-serialisable plain object.
   */
  execute(type: string, params?: Record<string, unknown>, options?: CallOptions): Promise<BlenderSocketResponse>
  /**
   * Like `execute`, resolving to the reply's JSON text, validated but not parsed: for callers
   * that forward it as text (MCP tool results are text).
   */
  executeRaw(type: string, params?: Record<string, unknown>, options?: CallOptions): Promise<string>
  /**
   * Leases one connection for several commands in a row. Waits like `execute` when none is
   * free; `options.signal` and `options.timeout` bound that wait.
   */
  acquire(options?: CallOptions): Promise<PooledConnection>
  /** Gives a leased connection back (a command still running on it finishes first). Idempotent. */
  release(connection: PooledConnection): Promise<void>
  /** The pool's counts, synchronously. */
  getStats(): PoolStats
  /** Counters and latency percentiles since the pool started, synchronously. */
  getMetrics(): PoolMetrics
  /**
   * The metrics in Prometheus' text exposition format (0.0.4), every sample labelled
   * `pool="<name>"`: counters `blender_mcp_pool_*_total` and
   * `blender_mcp_pool_failures_total{code=...}`, gauges `blender_mcp_pool_connections_open`,
   * `_idle`, `_busy`, `_opening` and `blender_mcp_pool_requests_pending`, and histograms
   * `blender_mcp_pool_execute_seconds` and `blender_mcp_pool_wait_seconds` (buckets from
   * 100 µs to 10 min).
   */
  metricsText(): string
  /** The same metrics as families, for exporters (see {@link registerPoolMetrics}). */
  metricFamilies(): MetricFamily[]
  /** The configuration in force, defaults and environment applied (`logger` and `loggerStyle` aside). */
  readonly config: Readonly<ResolvedPoolConfig>
  /**
   * Shuts down: waiting callers reject at once with `ERR_POOL_SHUTDOWN`, requests in flight
   * finish (or time out), then every socket closes and the promise resolves. Afterwards every
   * call rejects at once and opens nothing. Idempotent.
   */
  shutdown(): Promise<void>
}

/** One Prometheus metric family of a pool. */
export interface MetricFamily {
  /** The family's name, `blender_mcp_pool_...`. */
  name: string
  /** One line of help. */
  help: string
  /** Its kind. */
  type: 'counter' | 'gauge' | 'histogram'
  /** Its samples (a histogram's `_bucket{le}`, `_sum` and `_count`). */
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>
}

/**
 * Adds `pool`'s metrics to a prom-client `registry` (prom-client's default `register` when
 * omitted: prom-client, an optional peer dependency, is loaded only then), so that
 * `registry.metrics()` includes them. Pools registered with one registry share its families,
 * told apart by their `pool` label (their `name`), which must differ: a second pool of the same
 * name throws. A garbage-collected pool drops out. Registering a pool twice is a no-op.
 */
export declare function registerPoolMetrics(
  pool: ConnectionPool,
  registry?: { registerMetric(metric: unknown): void },
): void

/**
 * `node:diagnostics_channel` messages, published (only when someone subscribes) on the
 * channels named `blender-mcp-pool:command:start`, `blender-mcp-pool:command:end`,
 * `blender-mcp-pool:command:error`, `blender-mcp-pool:connection:open` and
 * `blender-mcp-pool:connection:close`. They never carry params or replies.
 */
export interface DiagnosticsMessages {
  /** A command was submitted. */
  'blender-mcp-pool:command:start': { pool: string; type: string; requestBytes: number }
  /** A command was answered (a `status: 'error'` reply included). */
  'blender-mcp-pool:command:end': {
    pool: string
    type: string
    requestBytes: number
    /** The reply's length in characters (bytes, for Blender's ASCII replies). */
    replyLength: number
    durationMs: number
    /** `conn-<n>`, the connection that carried it. */
    connectionId: string
  }
  /** A command failed. */
  'blender-mcp-pool:command:error': {
    pool: string
    type: string
    requestBytes: number
    durationMs: number
    code: BlenderPoolErrorCode | 'ERR_INVALID_ARG_TYPE'
    /** `null` when it was never sent. */
    connectionId: string | null
  }
  /** A connection opened. */
  'blender-mcp-pool:connection:open': { pool: string; connectionId: string }
  /** A connection left the pool. */
  'blender-mcp-pool:connection:close': {
    pool: string
    connectionId: string
    /**
     * An error code when a fault closed it, otherwise `closed-by-blender`, `idle-timeout`,
     * `max-requests`, `max-lifetime`, `shutdown`, `unusable-after-reply` or `closed`.
     */
    reason: string
  }
}

/**
 * The pool of this JS context (the main thread, or one worker thread), created on first call
 * from `BLENDER_HOST`, `BLENDER_PORT` and `SOCKET_TIMEOUT`, with the options given to
 * {@link configureConnectionPool} if it was called first. It is also the pool that carries
 * `blender-mcp-pool/socket-client`'s commands to that address. Its `maxResponseBytes` defaults
 * to 52428800 (50 MiB, the server's socket-client cap), not 64 MiB. After its `shutdown()` it
 * stays shut.
 */
export declare function getConnectionPool(): ConnectionPool

/**
 * Configures the shared pools once, before their first use: {@link getConnectionPool}'s pool,
 * and those `blender-mcp-pool/socket-client` opens for other addresses (which take every option
 * but `host` and `port` from here). Typically the reply cap, the logger, the framing:
 *
 * ```ts
 * configureConnectionPool({ maxResponseBytes: 100 * 1024 * 1024, framing: 'length-prefixed', logger })
 * ```
 *
 * Creates and returns getConnectionPool()'s pool, so an unusable option throws here
 * (`TypeError`/`RangeError` naming it, as the constructor does). Throws an `Error` with code
 * `ERR_POOL_ALREADY_CONFIGURED` once the shared pool exists: after a first call to this,
 * to getConnectionPool(), or to a socket-client command.
 */
export declare function configureConnectionPool(config?: Partial<ConnectionPoolConfig>): ConnectionPool
