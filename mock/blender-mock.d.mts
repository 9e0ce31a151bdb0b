/**
 * `blender-mcp-pool/mock`: a mock of the Blender MCP add-on's socket server, for testing an MCP
 * server without Blender. It speaks the add-on's protocol (a request is one JSON object, the
 * reply one JSON object with no delimiter), runs commands one at a time as Blender's main thread
 * does, keeps a small scene, counts what it sees, and injects faults on demand.
 *
 * ```ts
 * const mock = await startMockBlender()            // a free port on 127.0.0.1
 * process.env.BLENDER_PORT = String(mock.port)
 * mock.setFault('close')                            // the next request: closed unanswered
 * await mock.stop()
 * ```
 *
 * Also a command: `npx blender-mcp-pool mock --port 9876`.
 *
 * @packageDocumentation
 */

import type { Server } from 'node:net'

/**
 * Request faults:
 * - `close`: the connection is closed without a reply (FIN).
 * - `garbage`, `invalid-utf8`, `non-object`, `bad-status`, `bad-message`: a fixed malformed reply.
 * - `two-documents`: the reply, then a second JSON document.
 * - `no-reply`: never replies to this request (the connection stays usable).
 * - `half-reply`: the first half of the reply, then close.
 * - `half-reset`: the first half of the reply and a TCP RST right behind it (Blender crashing
 *   while it writes a reply).
 * - `padded`: the reply after a few bytes of whitespace (valid: JSON allows it).
 * - `trickle`: the reply one byte per event-loop turn.
 * - `reset`: no reply; the connection is reset (RST: the client sees ECONNRESET).
 * - `delay`: the reply, written `delayMs` after the command ran (other connections not held up).
 * - `huge`: a success reply whose `result` is `bytes` 'a' characters, in 1 MiB chunks with
 *   backpressure, `chunkDelayMs` apart.
 * - `half-open`: no reply, and the connection goes silent for good (never replies nor closes).
 * - `close-after-reply`: the reply, and the connection ended right behind it (one command per
 *   connection); requests still arriving on it are counted in `requestsAfterClose`, unanswered.
 */
export type Fault =
  | 'close'
  | 'garbage'
  | 'invalid-utf8'
  | 'non-object'
  | 'bad-status'
  | 'bad-message'
  | 'two-documents'
  | 'no-reply'
  | 'half-reply'
  | 'half-reset'
  | 'trickle'
  | 'reset'
  | 'delay'
  | 'huge'
  | 'half-open'
  | 'padded'
  | 'close-after-reply'

/** Every {@link Fault}. */
export declare const FAULTS: readonly Fault[]

/**
 * Connection faults, for connections accepted while set: `normal`; `refuse` (not listening:
 * ECONNREFUSED); `never-read` (accepted, never read nor answered); `close-on-accept`; and two
 * servers that are not the add-on:
 * - `greeting`: {@link GREETING} is written on accept, before any request;
 * - `early-reply`: a request whose first bytes arrive without its end is answered at once with
 *   `{"status":"error","message":"early reply to request <id>"}` (`<id>` from a leading
 *   `"params":{"id":<n>`, else `?`), reading pauses {@link EARLY_REPLY_PAUSE_MS}, and the rest
 *   of that request is never answered.
 */
export type AcceptMode = 'normal' | 'refuse' | 'never-read' | 'close-on-accept' | 'greeting' | 'early-reply'

/** What a connection accepted in `greeting` mode is sent first. */
export declare const GREETING: string

/** How long an `early-reply` connection stops reading after an early reply (ms). */
export declare const EARLY_REPLY_PAUSE_MS: number

/** Every {@link AcceptMode}. */
export declare const ACCEPT_MODES: readonly AcceptMode[]

/** The fast faults `seededFaultScript` chooses among by default (and the CLI's `--fault-rate`). */
export declare const FAST_FAULTS: readonly Fault[]

/** Default `delayMs` of the `delay` fault: 200. */
export declare const DEFAULT_DELAY_MS: number

/** Default `bytes` of the `huge` fault: 80 MiB. */
export declare const DEFAULT_HUGE_BYTES: number

/** Options of the `delay` and `huge` faults. */
export interface FaultOptions {
  /** `delay`: ms between running the command and writing its reply. Default: 200. */
  delayMs: number
  /** `huge`: length of the result string. Default: 80 MiB. */
  bytes: number
  /** `huge`: ms between two 1 MiB chunks (0: as fast as the socket takes them). Default: 0. */
  chunkDelayMs: number
}

/** What a fault script is told about each request. */
export interface ScriptContext {
  /** The connection's id, from 1, in accept order. */
  connectionId: number
  /** The request's index on its connection, from 0. */
  requestIndex: number
  /** The request's index over the whole server, from 0. */
  globalIndex: number
  /** The request's `type`, or null when it was not a JSON object. */
  type: string | null
  /** The request's `params`. */
  params: unknown
}

/** A script's choice for one request: a fault (with its options), or null for none. */
export type ScriptResult = Fault | ({ fault: Fault } & Partial<FaultOptions>) | null | undefined

/** Picks a fault (or none) for each request, synchronously, in the order requests arrive. */
export type FaultScript = (ctx: ScriptContext) => ScriptResult

/** One object of the mock's scene. */
export interface SceneObject {
  /** `MESH`, `CAMERA`, `LIGHT`... */
  type: string
  /** `[x, y, z]`. */
  location: number[]
}

/** What a command handler is given besides its params. */
export interface HandlerContext {
  /** The id of the connection the request came on. */
  connectionId: number
  /** The mock. */
  mock: MockBlender
  /** The scene, by object name. */
  scene: Map<string, SceneObject>
}

/**
 * A command: resolves to the reply's `result` (`{status: 'success', result}`); a throw or a
 * rejection becomes `{status: 'error', message}`.
 */
// biome-ignore lint/suspicious/noExplicitAny: a handler reads the params it expects, unchecked
export type CommandHandler = (params: any, ctx: HandlerContext) => unknown

/** Options of {@link startMockBlender}. */
export interface MockBlenderOptions {
  /** The port; 0 (the default) picks a free one (read it from `mock.port`). */
  port?: number
  /** The address to bind. Default: `127.0.0.1`. */
  host?: string
  /**
   * Commands added to, or replacing, the built-ins: `get_scene_info`, `get_object_info`
   * (`name`), `create_primitive` (`type`, `name`, `location`), `delete_object` (`name`),
   * `execute_code` (`code`; `print("x" * N)` prints N x's, anything else prints nothing),
   * `echo` (replies its params), `sleep` (`ms`), `big` (`bytes`: a string that long), `fail`
   * (`message`: an error reply).
   */
  handlers?: Record<string, CommandHandler>
  /** Picks a fault per request (see {@link MockBlender.setScript}, {@link seededFaultScript}). */
  script?: FaultScript | null
}

/** {@link MockBlender.snapshot}: a plain copy of every counter. */
export interface MockSnapshot {
  /** {@link MockBlender.port}. */
  port: number
  /** {@link MockBlender.host}. */
  host: string
  /** {@link MockBlender.listening}. */
  listening: boolean
  /** {@link MockBlender.acceptMode}. */
  acceptMode: AcceptMode
  /** {@link MockBlender.connectionsOpened}. */
  connectionsOpened: number
  /** {@link MockBlender.openConnections}. */
  openConnections: number
  /** {@link MockBlender.maxOpenConnections}. */
  maxOpenConnections: number
  /** Connections silenced by a `half-open` fault. */
  silentConnections: number
  /** {@link MockBlender.requests}. */
  requests: number
  /** {@link MockBlender.bytesReceived}. */
  bytesReceived: number
  /** {@link MockBlender.faultsInjected}. */
  faultsInjected: Record<string, number>
  /** {@link MockBlender.resets}. */
  resets: number
  /** {@link MockBlender.restarts}. */
  restarts: number
  /** {@link MockBlender.hugeBytesSent}. */
  hugeBytesSent: number
  /** {@link MockBlender.acceptFaults}. */
  acceptFaults: Record<string, number>
  /** {@link MockBlender.scriptErrors}. */
  scriptErrors: number
  /** {@link MockBlender.requestsAfterClose}. */
  requestsAfterClose: number
  /** {@link MockBlender.invalidRequests}. */
  invalidRequests: number
}

/** A running mock Blender. Create it with {@link startMockBlender}. */
export declare class MockBlender {
  /** @internal Use {@link startMockBlender}. */
  constructor(server: Server, handlers?: Record<string, CommandHandler>, options?: { script?: FaultScript | null })
  /** The port it listens on. */
  port: number
  /** The address it listens on. */
  host: string
  /** Connections accepted. */
  connectionsOpened: number
  /** Connections open now. */
  openConnections: number
  /** The most connections open at once. */
  maxOpenConnections: number
  /** Requests received. */
  requests: number
  /** Every request received, in order. */
  requestLog: { connectionId: number; type: string | null; params: unknown }[]
  /** Bytes received. */
  bytesReceived: number
  /** Request faults applied so far, by name. */
  faultsInjected: Record<string, number>
  /** Every request fault applied, in order. */
  faultLog: { globalIndex: number; connectionId: number; requestIndex: number; fault: Fault }[]
  /** TCP resets sent (the `reset` fault). */
  resets: number
  /** Completed `restart()` calls. */
  restarts: number
  /** Bytes of `huge` replies written so far. */
  hugeBytesSent: number
  /** Connections handled by the accept modes other than `normal`, by mode (`early-reply`: replies). */
  acceptFaults: Record<string, number>
  /** Requests whose script threw or named an unknown fault (answered with an error reply). */
  scriptErrors: number
  /** Requests that arrived on a connection after the mock ended it (`close-after-reply`). */
  requestsAfterClose: number
  /** Requests that were not a JSON object (two requests' bytes interleaved would make one). */
  invalidRequests: number
  /** The scene, by object name: `Cube`, `Camera` and `Light` to begin with. */
  scene: Map<string, SceneObject>
  /** The fault for the next request (one-shot unless set sticky); setting it = `setFault(name)`. */
  fault: Fault | null
  /** The options `setFault` set (a copy). */
  readonly faultOptions: FaultOptions
  /** The current accept mode. */
  readonly acceptMode: AcceptMode
  /** Whether it listens now (not in `refuse` mode, while restarting, or once stopped). */
  readonly listening: boolean
  /**
   * Sets (or clears, with null) the fault of the next request; `sticky` keeps it for every
   * request until cleared. Omitted options take their defaults.
   */
  setFault(name: Fault | null, options?: { sticky?: boolean } & Partial<FaultOptions>): void
  /**
   * Sets (or clears) the per-request script. Its non-null result is applied to that request
   * instead of `fault`, which then stays pending.
   */
  setScript(fn: FaultScript | null): void
  /**
   * Changes how new connections are handled; `refuse` stops listening, any other mode listens
   * again on the same port. Resolves once in effect.
   */
  setAcceptMode(mode: AcceptMode): Promise<void>
  /**
   * A Blender restart: stops listening, closes every connection, listens again on the same
   * port. Resolves once listening again. The scene and counters are kept.
   */
  restart(): Promise<void>
  /** Closes every open connection; resolves once all are closed. */
  closeAllConnections(): Promise<void>
  /** A plain copy of every counter. */
  snapshot(): MockSnapshot
  /**
   * Resolves once `predicate(mock)` holds, checked after every connection, close, request and
   * `huge` write; rejects after `timeoutMs` (default 5000).
   */
  waitFor(predicate: (mock: MockBlender) => boolean, timeoutMs?: number): Promise<MockBlender>
  /** Stops listening and closes every connection; resolves once all are closed. Idempotent. */
  stop(): Promise<void>
}

/** Starts a mock Blender; resolves once it listens. */
export declare function startMockBlender(options?: MockBlenderOptions): Promise<MockBlender>

/**
 * A deterministic fault script: request `globalIndex` gets a fault with probability `rate`,
 * chosen uniformly among `faults` (default {@link FAST_FAULTS}); the same seed gives the same
 * faults whatever the timing. `delay` faults wait `delayMs` (default 20).
 */
export declare function seededFaultScript(options: {
  rate: number
  seed?: number
  faults?: readonly Fault[]
  delayMs?: number
}): FaultScript

/** mulberry32: a small seeded PRNG yielding floats in [0, 1). */
export declare function mulberry32(seed: number): () => number

/**
 * The command line (`npx blender-mcp-pool mock [--port N] [--host H] [--fault-rate R]
 * [--seed S]`): starts a mock and keeps it running; exits the process on a usage error (2) and
 * on SIGINT/SIGTERM (0).
 */
export declare function runCli(argv: string[]): Promise<MockBlender>
