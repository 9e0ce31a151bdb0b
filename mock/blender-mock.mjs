// Mock of the Blender MCP add-on's TCP socket server: one connection per client, any number of
// commands on it, one at a time (as Blender's main thread runs them; see docs/mock.md).
// Requests: one JSON object each (the client appends '\n'); replies: one JSON object, no delimiter.
// Used in-process by tests (startMockBlender) and as a CLI by the demo.
import net from 'node:net'
import { pathToFileURL } from 'node:url'

/**
 * Names accepted by `MockBlender#setFault` / the `fault` property / a script's return value.
 * - `close`: destroy the connection without replying (FIN).
 * - `garbage`, `invalid-utf8`, `non-object`, `bad-status`, `bad-message`: fixed malformed replies.
 * - `two-documents`: the reply followed by a second JSON document.
 * - `no-reply`: never reply to this request (the connection stays usable).
 * - `half-reply`: the first half of the reply, then close.
 * - `half-reset`: the first half of the reply and a TCP RST right behind it, in one turn of the
 *   event loop (Blender crashing while it writes a reply: both reach the client together).
 * - `padded`: the normal reply after a few bytes of whitespace (valid: JSON allows it).
 * - `trickle`: the reply one byte per event-loop turn.
 * - `reset`: no reply; reset the connection with a TCP RST (the client sees ECONNRESET).
 * - `delay`: the normal reply, written `delayMs` (default 200) after the command ran; the wait
 *   does not hold the mock's serial command queue, so other connections are not blocked.
 * - `huge`: a valid success reply whose result is `bytes` (default 80 MiB) 'a' characters,
 *   streamed in 1 MiB chunks with backpressure, `chunkDelayMs` (default 0) apart; stops as soon
 *   as the socket is gone. `hugeBytesSent` counts what it wrote.
 * - `half-open`: no reply, and this connection goes silent for good: never replies, never closes
 *   on its own, discards further data (a peer that vanished without FIN).
 * - `close-after-reply`: the normal reply, and the connection ended right behind it (a server
 *   that serves one command per connection). Requests that still arrive on it are counted in
 *   `requestsAfterClose` and never answered.
 */
export const FAULTS = Object.freeze([
  'close',
  'garbage',
  'invalid-utf8',
  'non-object',
  'bad-status',
  'bad-message',
  'two-documents',
  'no-reply',
  'half-reply',
  'half-reset',
  'trickle',
  'reset',
  'delay',
  'huge',
  'half-open',
  'padded',
  'close-after-reply',
])

/**
 * Connection-level behaviours for `MockBlender#setAcceptMode`, applied to connections accepted
 * while set: `normal`; `refuse` (not listening: ECONNREFUSED); `never-read` (accepted, paused,
 * never read nor answered); `close-on-accept` (accepted, then destroyed at once). Two are
 * servers that are not the add-on, for testing a client's framing:
 * - `greeting`: a JSON document (`GREETING`) is written as soon as the connection is accepted,
 *   before any request; then requests are served as usual.
 * - `early-reply`: a request whose first bytes arrive without its end is answered at once, with
 *   `{"status":"error","message":"early reply to request <id>"}` (`<id>` read from a leading
 *   `"params":{"id":<n>` if there is one, else `?`), and the connection stops reading for
 *   `EARLY_REPLY_PAUSE_MS`; the rest of that request is then read and never answered (as an
 *   add-on that refuses an oversized request does).
 */
export const ACCEPT_MODES = Object.freeze([
  'normal',
  'refuse',
  'never-read',
  'close-on-accept',
  'greeting',
  'early-reply',
])

/** What a connection accepted in `greeting` mode is sent first. */
export const GREETING = '{"status":"success","result":"greeting"}'
/** How long an `early-reply` connection stops reading after an early reply. */
export const EARLY_REPLY_PAUSE_MS = 50

/** The fast faults the CLI's `--fault-rate` (and `seededFaultScript` by default) chooses among. */
export const FAST_FAULTS = Object.freeze([
  'close',
  'garbage',
  'non-object',
  'bad-status',
  'two-documents',
  'half-reply',
  'reset',
  'delay',
])

/** Default `delayMs` of the `delay` fault. */
export const DEFAULT_DELAY_MS = 200
/** Default `bytes` of the `huge` fault's result string (80 MiB). */
export const DEFAULT_HUGE_BYTES = 80 * 1024 * 1024

/** Faults answered with fixed bytes, without running the command. */
const FIXED_REPLIES = {
  garbage: Buffer.from('not json at all}'),
  'invalid-utf8': Buffer.concat([
    Buffer.from('{"status":"success","result":"'),
    Buffer.from([0xff, 0xfe]),
    Buffer.from('"}'),
  ]),
  'non-object': Buffer.from('[1,2,3]'),
  'bad-status': Buffer.from('{"status":"weird","result":1}'),
  'bad-message': Buffer.from('{"status":"error","message":42}'),
}
const EXTRA_DOCUMENT = Buffer.from('{"status":"success","result":"extra"}')
const LEADING_WHITESPACE = Buffer.from('\r\n \t')
const PRIMITIVE_NAMES = { UV_SPHERE: 'Sphere', ICO_SPHERE: 'Icosphere', MONKEY: 'Suzanne' }
const HUGE_CHUNK = 1024 * 1024
const HUGE_PREFIX = Buffer.from('{"status":"success","result":"')
const HUGE_SUFFIX = Buffer.from('"}')
/** One shared, never-mutated 1 MiB run of 'a' bytes, allocated on first use of `huge`. */
let hugeChunk = null

/**
 * mulberry32: a tiny seeded 32-bit PRNG. Returns a function yielding floats in [0, 1).
 * @param {number} seed any number; only its low 32 bits are used
 * @returns {() => number}
 */
export function mulberry32(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A deterministic fault script for `startMockBlender({ script })` / `MockBlender#setScript`:
 * request number `globalIndex` gets a fault with probability `rate`, chosen uniformly among
 * `faults`. The decision is a pure function of (seed, globalIndex), so the same seed gives the
 * same fault sequence whatever the timing or number of connections. `delay` faults use `delayMs`.
 * @param {{ rate: number, seed?: number, faults?: readonly string[], delayMs?: number }} options
 * @returns {(ctx: ScriptContext) => ScriptResult}
 */
export function seededFaultScript({ rate, seed = 1, faults = FAST_FAULTS, delayMs = 20 }) {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`fault rate must be in [0, 1]: ${rate}`)
  for (const f of faults) if (!FAULTS.includes(f)) throw new TypeError(`Unknown fault: ${f}`)
  if (faults.length === 0 && rate > 0) throw new RangeError('no faults to choose from')
  return ({ globalIndex }) => {
    const rng = mulberry32((seed + Math.imul(globalIndex + 1, 0x9e3779b9)) >>> 0)
    if (rate === 0 || rng() >= rate) return null
    const fault = faults[Math.floor(rng() * faults.length)]
    return fault === 'delay' ? { fault, delayMs } : fault
  }
}

/**
 * @typedef {{ connectionId: number, requestIndex: number, globalIndex: number,
 *   type: string | null, params: unknown }} ScriptContext
 *   Argument of a fault script: the connection's id (1-based), the request's 0-based index on its
 *   connection and over the whole server, and the request's `type`/`params` (null/undefined when
 *   the request was not a JSON object).
 * @typedef {string | { fault: string, delayMs?: number, bytes?: number, chunkDelayMs?: number }
 *   | null | undefined}
 *   ScriptResult  A fault name (or a fault with its options) to apply to the request, or
 *   null/undefined for none (the `fault` property then applies as usual).
 * @typedef {{ delayMs: number, bytes: number, chunkDelayMs: number }} FaultOptions
 */

/**
 * Incremental, linear-time splitter of a byte stream into JSON-object requests. Tracks brace
 * depth, strings and backslash escapes across chunks; skips whitespace between requests. Input
 * not starting with '{' is consumed up to the next '\n' and reported as one (invalid) request.
 */
class RequestSplitter {
  #parts = []
  #depth = 0
  #inString = false
  #escape = false
  #mode = 'idle' // idle|object|junk

  /** The first bytes of a request begun but not ended, or null. */
  get partial() {
    return this.#mode === 'object' && this.#parts.length > 0 ? this.#parts[0] : null
  }

  /** Feeds a chunk; calls onRequest(bytes) per complete request; stops early if it returns false. */
  push(chunk, onRequest) {
    let start = this.#mode === 'idle' ? -1 : 0
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]
      let done = false
      if (this.#mode === 'idle') {
        if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) continue
        start = i
        if (b === 0x7b) {
          this.#mode = 'object'
          this.#depth = 1
        } else this.#mode = 'junk'
      } else if (this.#mode === 'junk') {
        done = b === 0x0a
      } else if (this.#inString) {
        if (this.#escape) this.#escape = false
        else if (b === 0x5c) this.#escape = true
        else if (b === 0x22) this.#inString = false
      } else if (b === 0x22) this.#inString = true
      else if (b === 0x7b || b === 0x5b) this.#depth++
      else if (b === 0x7d || b === 0x5d) done = --this.#depth === 0
      if (!done) continue
      this.#parts.push(chunk.subarray(start, i + 1))
      const bytes = this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts)
      this.#parts = []
      this.#mode = 'idle'
      start = -1
      if (onRequest(bytes) === false) return
    }
    if (start >= 0) this.#parts.push(chunk.subarray(start))
  }
}

/**
 * A running mock Blender server. Create with `startMockBlender()`. Counters and `requestLog`
 * are plain public fields; `fault` is a one-shot fault for the next request received.
 */
export class MockBlender {
  /** @type {number} */ port = 0
  /** @type {string} */ host = '127.0.0.1'
  connectionsOpened = 0
  /** Connections currently open (incremented on accept, decremented on their 'close'). */
  openConnections = 0
  maxOpenConnections = 0
  requests = 0
  /** @type {{ connectionId: number, type: string | null, params: unknown }[]} */
  requestLog = []
  bytesReceived = 0
  /**
   * Request faults applied so far: fault name -> count (from `fault`/`setFault` or the script).
   * @type {Record<string, number>}
   */
  faultsInjected = {}
  /**
   * Every request fault applied, in order received.
   * @type {{ globalIndex: number, connectionId: number, requestIndex: number, fault: string }[]}
   */
  faultLog = []
  /** TCP RSTs sent (the `reset` fault). */
  resets = 0
  /** Completed `restart()` calls. */
  restarts = 0
  /** Bytes of `huge` replies written so far (`waitFor` sees each write). */
  hugeBytesSent = 0
  /**
   * Connections handled by the `never-read` / `close-on-accept` accept modes: mode -> count.
   * @type {Record<string, number>}
   */
  acceptFaults = {}
  /** Requests that arrived on a connection after this mock ended it (`close-after-reply`). */
  requestsAfterClose = 0
  /** Requests that were not a JSON object (two requests' bytes interleaved would be one). */
  invalidRequests = 0
  /** Requests whose script threw or returned an unknown fault (answered with an error reply). */
  scriptErrors = 0
  /** In-memory scene: object name -> { type, location }. */
  scene = new Map([
    ['Cube', { type: 'MESH', location: [0, 0, 0] }],
    ['Camera', { type: 'CAMERA', location: [7.36, -6.93, 4.96] }],
    ['Light', { type: 'LIGHT', location: [4.08, 1.01, 5.9] }],
  ])

  /** @type {net.Server | null} */ #server
  #handlers
  #fault = null
  #sticky = false
  /** @type {FaultOptions} */ #faultOptions = checkFaultOptions({})
  /** @type {((ctx: ScriptContext) => ScriptResult) | null} */ #script = null
  #acceptMode = 'normal'
  #listenerChain = Promise.resolve()
  #queue = Promise.resolve()
  #conns = new Set()
  #waiters = new Set()
  #timers = new Set()
  #stopped = null

  /**
   * @param {net.Server} server the (listening or about to listen) server to serve
   * @param {Record<string, Function>} [handlers] extra or overriding commands
   * @param {{ script?: ((ctx: ScriptContext) => ScriptResult) | null }} [options]
   */
  constructor(server, handlers = {}, options = {}) {
    this.#server = server
    this.#handlers = { ...this.#builtins(), ...handlers }
    this.#attach(server)
    if (options.script != null) this.setScript(options.script)
  }

  /** Fault applied to the next request received (one-shot unless set sticky via setFault). */
  get fault() {
    return this.#fault
  }
  set fault(name) {
    this.setFault(name)
  }

  /** Options of the `delay`/`huge` faults set through `setFault` (a copy). @returns {FaultOptions} */
  get faultOptions() {
    return { ...this.#faultOptions }
  }

  /** The current accept mode (see `ACCEPT_MODES`). */
  get acceptMode() {
    return this.#acceptMode
  }

  /** Whether the mock currently listens (false in `refuse` mode, while restarting, once stopped). */
  get listening() {
    return this.#server?.listening ?? false
  }

  /**
   * Sets (or clears, with null) the fault for the next request; `sticky` keeps it until cleared.
   * `delayMs` (for `delay`), `bytes` and `chunkDelayMs` (for `huge`) set the fault's options;
   * omitted ones reset to their defaults (200 ms, 80 MiB, 0 ms).
   * @param {string | null} name
   * @param {{ sticky?: boolean, delayMs?: number, bytes?: number, chunkDelayMs?: number }} [options]
   */
  setFault(name, { sticky = false, ...options } = {}) {
    if (name !== null && !FAULTS.includes(name)) throw new TypeError(`Unknown fault: ${name}`)
    const faultOptions = checkFaultOptions(options)
    this.#fault = name
    this.#sticky = name !== null && sticky
    this.#faultOptions = faultOptions
  }

  /**
   * Sets (or clears, with null) the per-request script: called synchronously for every request
   * received, in order, with a `ScriptContext`. A non-null result (fault name, or
   * `{ fault, delayMs?, bytes? }`) is applied to that request instead of the `fault` property,
   * which then stays pending (a one-shot fault is only consumed by a request it applies to).
   * A script that throws or names an unknown fault gets that request an error reply
   * (`mock script: ...`) and counts in `scriptErrors`.
   * @param {((ctx: ScriptContext) => ScriptResult) | null} fn
   */
  setScript(fn) {
    if (fn !== null && typeof fn !== 'function') throw new TypeError('script must be a function or null')
    this.#script = fn
  }

  /**
   * Changes how new connections are handled (see `ACCEPT_MODES`); connections already open are
   * unaffected. `refuse` stops listening (connects get ECONNREFUSED); any other mode re-listens on
   * the same port if needed. Resolves once the change took effect; changes (and `restart`) are
   * applied in call order. Rejects if the port cannot be re-bound or the mock was stopped.
   * @param {'normal' | 'refuse' | 'never-read' | 'close-on-accept'} mode
   * @returns {Promise<void>}
   */
  setAcceptMode(mode) {
    if (!ACCEPT_MODES.includes(mode)) throw new TypeError(`Unknown accept mode: ${mode}`)
    return this.#onListenerChain(async () => {
      this.#acceptMode = mode
      if (mode === 'refuse') await this.#closeListener()
      else if (!this.#server) await this.#listen()
    })
  }

  /**
   * Simulates a Blender restart: stops listening, destroys every open connection (resolving once
   * all are closed), forgets the commands still running (later ones do not wait for them), then
   * listens again on the same port. Resolves once listening again (in `refuse` accept mode it
   * stays not listening). The scene and counters are kept.
   * @returns {Promise<void>}
   */
  restart() {
    return this.#onListenerChain(async () => {
      const closing = this.#closeListener()
      await this.closeAllConnections()
      await closing
      // A restarted Blender runs nothing: commands still running are forgotten, not waited for.
      this.#queue = Promise.resolve()
      if (this.#acceptMode !== 'refuse') await this.#listen()
      this.restarts++
      this.#notify()
    })
  }

  /** Destroys every open socket; resolves once the server has seen them all closed. */
  closeAllConnections() {
    return Promise.all(
      [...this.#conns].map((c) => {
        c.socket.destroy()
        return c.closed
      }),
    ).then(() => undefined)
  }

  /**
   * A plain-object copy of every counter (for assertions and the CLI's SIGUSR2 dump).
   * @returns {{ port: number, host: string, listening: boolean, acceptMode: string,
   *   connectionsOpened: number, openConnections: number, maxOpenConnections: number,
   *   silentConnections: number, requests: number, bytesReceived: number,
   *   faultsInjected: Record<string, number>, resets: number, restarts: number, hugeBytesSent: number,
   *   acceptFaults: Record<string, number>, scriptErrors: number, requestsAfterClose: number,
   *   invalidRequests: number }}
   */
  snapshot() {
    let silentConnections = 0
    for (const c of this.#conns) if (c.silent) silentConnections++
    return {
      port: this.port,
      host: this.host,
      listening: this.listening,
      acceptMode: this.#acceptMode,
      connectionsOpened: this.connectionsOpened,
      openConnections: this.openConnections,
      maxOpenConnections: this.maxOpenConnections,
      silentConnections,
      requests: this.requests,
      bytesReceived: this.bytesReceived,
      faultsInjected: { ...this.faultsInjected },
      resets: this.resets,
      restarts: this.restarts,
      hugeBytesSent: this.hugeBytesSent,
      acceptFaults: { ...this.acceptFaults },
      requestsAfterClose: this.requestsAfterClose,
      invalidRequests: this.invalidRequests,
      scriptErrors: this.scriptErrors,
    }
  }

  /**
   * Resolves (with this mock) once `predicate(mock)` is true, re-checked after every server event
   * (connection, close, request); rejects after `timeoutMs`.
   * @param {(mock: MockBlender) => boolean} predicate @param {number} [timeoutMs]
   */
  waitFor(predicate, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const waiter = { predicate, resolve, reject, timer: null }
      waiter.timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(new Error(`mock-blender waitFor timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiters.add(waiter)
      this.#notify()
    })
  }

  /**
   * Closes the listener and destroys all sockets; resolves once the listener and every socket are
   * closed. Idempotent. Waits for a pending `setAcceptMode`/`restart` (which then fail).
   */
  stop() {
    if (this.#stopped) return this.#stopped
    const destroyAll = () => {
      for (const c of this.#conns) c.socket.destroy()
      for (const t of this.#timers) clearTimeout(t)
      this.#timers.clear()
    }
    destroyAll()
    // After any pending accept-mode change / restart (which may just have re-listened).
    this.#stopped = this.#listenerChain.then(async () => {
      const server = this.#server
      this.#server = null
      const serverClosed = server?.listening ? new Promise((resolve) => server.close(() => resolve())) : undefined
      destroyAll()
      await Promise.all([...this.#conns].map((c) => c.closed))
      await serverClosed
    })
    return this.#stopped
  }

  /** Runs fn after the previous listener change; rejects at once if the mock was stopped. */
  #onListenerChain(fn) {
    if (this.#stopped) return Promise.reject(new Error('mock-blender is stopped'))
    const result = this.#listenerChain.then(() => {
      if (this.#stopped) throw new Error('mock-blender is stopped')
      return fn()
    })
    this.#listenerChain = result.then(
      () => {},
      () => {},
    )
    return result
  }

  #attach(server) {
    server.on('connection', (socket) => this.#onConnection(socket))
    server.on('error', () => {})
  }

  /** Listens on a fresh server at this.port/this.host (the port of the first listen). */
  #listen() {
    if (this.#stopped) return Promise.reject(new Error('mock-blender is stopped'))
    const server = net.createServer()
    this.#attach(server)
    return new Promise((resolve, reject) => {
      const onError = (err) => reject(err)
      server.once('error', onError)
      server.listen(this.port, this.host, () => {
        server.off('error', onError)
        this.#server = server
        resolve()
      })
    })
  }

  /**
   * Stops listening now (new connects are refused from here on). Resolves on the next turn of the
   * event loop; the old server's own 'close' (which waits for its connections) is not awaited.
   */
  #closeListener() {
    const server = this.#server
    this.#server = null
    if (server?.listening) server.close()
    return new Promise((resolve) => setImmediate(resolve))
  }

  /**
   * Resolves after `ms`; `stop()` cancels the timer (the promise then never settles: its socket
   * is gone anyway). Once stopped, resolves at once without arming a timer. With `conn`, also
   * resolves early (timer cleared) when that connection closes, so no timer outlives its socket.
   * @param {number} ms @param {{ socket: net.Socket } | null} [conn] @returns {Promise<void>}
   */
  #sleep(ms, conn = null) {
    if (this.#stopped || conn?.socket.destroyed) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t)
        this.#timers.delete(t)
        conn?.socket.off('close', done)
        resolve()
      }
      const t = setTimeout(done, ms)
      this.#timers.add(t)
      conn?.socket.once('close', done)
    })
  }

  #notify() {
    for (const w of this.#waiters) {
      let ok
      try {
        ok = w.predicate(this)
      } catch (err) {
        ok = err
      }
      if (!ok) continue
      this.#waiters.delete(w)
      clearTimeout(w.timer)
      if (ok instanceof Error) w.reject(ok)
      else w.resolve(this)
    }
  }

  #onConnection(socket) {
    if (this.#stopped) {
      socket.destroy()
      return
    }
    const mode = this.#acceptMode
    const conn = {
      id: ++this.connectionsOpened,
      socket,
      chain: Promise.resolve(),
      closed: null,
      requests: 0,
      silent: false,
      ended: false,
      early: mode === 'early-reply',
      answeredEarly: false,
    }
    conn.closed = new Promise((resolve) => socket.once('close', resolve))
    this.#conns.add(conn)
    this.openConnections++
    this.maxOpenConnections = Math.max(this.maxOpenConnections, this.openConnections)
    socket.on('error', () => {}) // ECONNRESET, EPIPE...: the 'close' event follows; never crash
    socket.on('close', () => {
      this.#conns.delete(conn)
      this.openConnections--
      this.#notify()
    })
    if (mode === 'never-read' || mode === 'close-on-accept') {
      this.acceptFaults[mode] = (this.acceptFaults[mode] ?? 0) + 1
      if (mode === 'never-read') socket.pause()
      else socket.destroy()
      this.#notify()
      return
    }
    socket.setNoDelay(true)
    if (mode === 'greeting') {
      this.acceptFaults[mode] = (this.acceptFaults[mode] ?? 0) + 1
      socket.write(GREETING)
    }
    const splitter = new RequestSplitter()
    socket.on('data', (chunk) => {
      this.bytesReceived += chunk.length
      if (conn.silent) return // half-open: discard everything from now on
      splitter.push(chunk, (bytes) => this.#onRequest(conn, bytes))
      if (conn.early && splitter.partial && !conn.answeredEarly) this.#replyEarly(conn, splitter.partial)
    })
    this.#notify()
  }

  /** `early-reply` mode: answers the request whose first bytes are `head`, before its end. */
  #replyEarly(conn, head) {
    conn.answeredEarly = true
    this.acceptFaults['early-reply'] = (this.acceptFaults['early-reply'] ?? 0) + 1
    const id = /^\{"type":"[^"]*","params":\{"id":(\d+)/.exec(head.toString('latin1'))?.[1] ?? '?'
    write(conn.socket, Buffer.from(JSON.stringify({ status: 'error', message: `early reply to request ${id}` })))
    conn.socket.pause()
    this.#sleep(EARLY_REPLY_PAUSE_MS, conn).then(() => {
      if (!conn.socket.destroyed) conn.socket.resume()
    })
  }

  /** Records a complete request and queues its handling; returns false to stop parsing. */
  #onRequest(conn, bytes) {
    if (conn.ended) {
      this.requestsAfterClose++
      this.#notify()
      return true
    }
    if (conn.answeredEarly) {
      // The rest of a request answered early: never answered again.
      conn.answeredEarly = false
      return true
    }
    if (conn.socket.destroyed || conn.silent) return false
    let req = null
    try {
      const parsed = JSON.parse(bytes.toString('utf8'))
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) req = parsed
    } catch {
      /* invalid JSON: req stays null */
    }
    if (req === null) this.invalidRequests++
    const type = req ? (req.type ?? null) : null
    const globalIndex = this.requests
    const requestIndex = conn.requests++
    let fault = null
    let options = this.#faultOptions
    let scriptError = null
    if (this.#script) {
      try {
        const picked = this.#script({ connectionId: conn.id, requestIndex, globalIndex, type, params: req?.params })
        if (picked != null) {
          const name = typeof picked === 'string' ? picked : picked.fault
          if (!FAULTS.includes(name)) throw new TypeError(`Unknown fault: ${name}`)
          fault = name
          options = checkFaultOptions(typeof picked === 'string' ? {} : picked)
        }
      } catch (err) {
        scriptError = `mock script: ${err instanceof Error ? err.message : String(err)}`
        fault = null
        this.scriptErrors++
      }
    }
    if (fault === null && scriptError === null && this.#fault !== null) {
      fault = this.#fault
      if (!this.#sticky) this.#fault = null
    }
    this.requests++
    this.requestLog.push({ connectionId: conn.id, type, params: req?.params })
    if (fault !== null) {
      this.faultsInjected[fault] = (this.faultsInjected[fault] ?? 0) + 1
      this.faultLog.push({ globalIndex, connectionId: conn.id, requestIndex, fault })
    }
    if (fault === 'half-open') conn.silent = true
    const respond =
      scriptError === null
        ? () => this.#respond(conn, req, fault, options)
        : () => write(conn.socket, Buffer.from(JSON.stringify({ status: 'error', message: scriptError })))
    conn.chain = conn.chain.then(respond).catch(() => {})
    this.#notify()
    return !conn.silent
  }

  /** @param {{ socket: net.Socket }} conn @param {any} req @param {string | null} fault @param {FaultOptions} options */
  async #respond(conn, req, fault, options) {
    const { socket } = conn
    if (fault === 'close') {
      socket.destroy()
      return
    }
    if (fault === 'reset') {
      if (!socket.destroyed) {
        this.resets++
        socket.resetAndDestroy()
      }
      return
    }
    if (fault === 'no-reply' || fault === 'half-open') return
    if (fault === 'huge') {
      await writeHuge(
        socket,
        options.bytes,
        options.chunkDelayMs,
        (ms) => this.#sleep(ms, conn),
        (n) => {
          this.hugeBytesSent += n
          this.#notify()
        },
      )
      return
    }
    if (FIXED_REPLIES[fault]) {
      write(socket, FIXED_REPLIES[fault])
      return
    }
    const reply = Buffer.from(JSON.stringify(await this.#serial(() => this.#run(conn, req))))
    if (fault === 'delay') {
      await this.#sleep(options.delayMs, conn)
      write(socket, reply)
    } else if (fault === 'two-documents') write(socket, Buffer.concat([reply, EXTRA_DOCUMENT]))
    else if (fault === 'half-reply') {
      if (!socket.destroyed) socket.write(reply.subarray(0, reply.length >> 1), () => socket.destroy())
    } else if (fault === 'half-reset') {
      if (!socket.destroyed) {
        this.resets++
        socket.write(reply.subarray(0, reply.length >> 1))
        socket.resetAndDestroy()
      }
    } else if (fault === 'trickle') await trickle(socket, reply)
    else if (fault === 'padded') write(socket, Buffer.concat([LEADING_WHITESPACE, reply]))
    else if (fault === 'close-after-reply') {
      conn.ended = true
      if (!socket.destroyed) socket.end(reply)
    } else write(socket, reply)
  }

  /** Runs fn after every previously queued command, server-wide (Blender's single main thread). */
  #serial(fn) {
    const result = this.#queue.then(fn)
    this.#queue = result.then(
      () => {},
      () => {},
    )
    return result
  }

  async #run(conn, req) {
    if (req === null) return { status: 'error', message: 'Invalid JSON' }
    const handler = Object.hasOwn(this.#handlers, req.type) ? this.#handlers[req.type] : null
    if (typeof handler !== 'function') {
      return { status: 'error', message: `Unknown command type: ${req.type}` }
    }
    try {
      const ctx = { connectionId: conn.id, mock: this, scene: this.scene }
      const result = await handler(req.params ?? {}, ctx)
      return { status: 'success', result: result === undefined ? null : result }
    } catch (err) {
      return { status: 'error', message: err instanceof Error ? err.message : String(err) }
    }
  }

  #builtins() {
    const scene = this.scene
    const mustFind = (name) => {
      if (!scene.has(name)) throw new Error(`Object not found: ${name}`)
      return scene.get(name)
    }
    const uniqueName = (base) => {
      for (let i = 0, n = base; ; n = `${base}.${String(++i).padStart(3, '0')}`) {
        if (!scene.has(n)) return n
      }
    }
    return {
      get_scene_info: () => ({ name: 'Scene', object_count: scene.size, objects: [...scene.keys()] }),
      get_object_info: ({ name }) => {
        const obj = mustFind(name)
        return { name, type: obj.type, location: [...obj.location] }
      },
      create_primitive: ({ type = 'CUBE', name, location = [0, 0, 0] }) => {
        const upper = String(type).toUpperCase()
        const base =
          typeof name === 'string' && name
            ? name
            : (PRIMITIVE_NAMES[upper] ?? upper.charAt(0) + upper.slice(1).toLowerCase())
        const unique = uniqueName(base)
        scene.set(unique, { type: 'MESH', location: Array.isArray(location) ? [...location] : [0, 0, 0] })
        return { name: unique }
      },
      delete_object: ({ name }) => {
        mustFind(name)
        scene.delete(name)
        return { deleted: name }
      },
      execute_code: ({ code }) => {
        const m = typeof code === 'string' ? /^print\("x" \* (\d+)\)$/.exec(code) : null
        return { executed: true, result: m ? `${'x'.repeat(Number(m[1]))}\n` : '' }
      },
      echo: (params) => params,
      sleep: ({ ms = 0 }) => this.#sleep(Number(ms) || 0).then(() => ({ slept: ms })),
      big: ({ bytes = 0 }) => 'a'.repeat(Math.max(0, Number(bytes) || 0)),
      fail: ({ message = 'fail' }) => {
        throw new Error(String(message))
      },
    }
  }
}

/**
 * Validates `delay`/`huge` options, defaults filled in.
 * @param {Partial<FaultOptions>} o @returns {FaultOptions}
 */
function checkFaultOptions(o) {
  const delayMs = o.delayMs ?? DEFAULT_DELAY_MS
  const bytes = o.bytes ?? DEFAULT_HUGE_BYTES
  const chunkDelayMs = o.chunkDelayMs ?? 0
  if (!(Number.isFinite(delayMs) && delayMs >= 0)) throw new RangeError(`invalid delayMs: ${delayMs}`)
  if (!(Number.isFinite(chunkDelayMs) && chunkDelayMs >= 0))
    throw new RangeError(`invalid chunkDelayMs: ${chunkDelayMs}`)
  if (!(Number.isSafeInteger(bytes) && bytes >= 0)) throw new RangeError(`invalid bytes: ${bytes}`)
  return { delayMs, bytes, chunkDelayMs }
}

function write(socket, bytes) {
  if (!socket.destroyed) socket.write(bytes)
}

/** Writes bytes one per setImmediate tick; stops if the socket goes away. */
function trickle(socket, bytes) {
  return new Promise((resolve) => {
    let i = 0
    const step = () => {
      if (socket.destroyed || i >= bytes.length) {
        resolve()
        return
      }
      socket.write(bytes.subarray(i, ++i))
      setImmediate(step)
    }
    step()
  })
}

/** Resolves on the socket's next 'drain' or 'close' (at once if it is already unwritable). */
function drainOrClose(socket) {
  if (socket.destroyed || !socket.writable) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done)
      socket.off('close', done)
      resolve()
    }
    socket.on('drain', done)
    socket.on('close', done)
  })
}

/**
 * Streams `{"status":"success","result":"aaa…"}` with `bytes` 'a's in 1 MiB chunks, waiting for
 * 'drain' whenever the socket's buffer is full, and `chunkDelayMs` (through `sleep`) between
 * chunks; stops as soon as the socket is destroyed or ended, so at most ~1 MiB is ever buffered
 * in the process. `onWrite(n)` is told each write's size.
 */
async function writeHuge(socket, bytes, chunkDelayMs, sleep, onWrite) {
  hugeChunk ??= Buffer.alloc(HUGE_CHUNK, 0x61)
  const writable = () => !socket.destroyed && socket.writable
  const send = async (buf) => {
    const flushed = socket.write(buf)
    onWrite(buf.length)
    if (!flushed) await drainOrClose(socket)
  }
  if (!writable()) return
  await send(HUGE_PREFIX)
  for (let left = bytes; left > 0; ) {
    if (chunkDelayMs > 0 && left < bytes) await sleep(chunkDelayMs)
    if (!writable()) return
    const n = Math.min(left, HUGE_CHUNK)
    left -= n
    await send(n === HUGE_CHUNK ? hugeChunk : hugeChunk.subarray(0, n))
  }
  if (writable()) await send(HUGE_SUFFIX)
}

/**
 * Starts a mock Blender add-on server.
 * @param {{ port?: number, host?: string,
 *   handlers?: Record<string, (params: any, ctx: { connectionId: number, mock: MockBlender,
 *     scene: Map<string, { type: string, location: number[] }> }) => unknown>,
 *   script?: ((ctx: ScriptContext) => ScriptResult) | null }} [options]
 *   port 0 (default) picks a free port; handlers add or override commands (throw => error reply);
 *   script picks a fault per request (see `MockBlender#setScript`, `seededFaultScript`).
 * @returns {Promise<MockBlender>}
 */
export async function startMockBlender(options = {}) {
  const { port = 0, host = '127.0.0.1', handlers = {}, script = null } = options
  const server = net.createServer()
  const mock = new MockBlender(server, handlers, { script })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  mock.host = host
  mock.port = /** @type {net.AddressInfo} */ (server.address()).port
  return mock
}

const USAGE = 'usage: blender-mcp-pool mock [--port N] [--host H] [--fault-rate R] [--seed S]\n'

/**
 * CLI: node mock/blender-mock.mjs [--port N] [--host H] [--fault-rate R] [--seed S]
 * `--fault-rate R` (0..1, default 0) applies a seeded-random fast fault (`FAST_FAULTS`; `delay`
 * with delayMs 20) to fraction R of requests; `--seed S` (integer, default 1) makes it
 * reproducible. Prints its listening line on stderr and nothing on stdout; SIGUSR2 dumps
 * `snapshot()` as one JSON line on stderr. Also `npx blender-mcp-pool mock ...`. Exits the
 * process with 2 on a usage error, and with 0 on SIGINT/SIGTERM once the mock has stopped.
 * @param {string[]} argv the arguments after the command
 * @returns {Promise<MockBlender>} the running mock
 */
export async function runCli(argv) {
  let port = Number(process.env.BLENDER_PORT ?? 9876)
  let host = '127.0.0.1'
  let faultRate = 0
  let seed = 1
  const flags = new Set(['--port', '--host', '--fault-rate', '--seed'])
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help' || argv[i] === '-h') {
      process.stderr.write(USAGE)
      process.exit(0)
    }
    const eq = argv[i].indexOf('=')
    const flag = eq < 0 ? argv[i] : argv[i].slice(0, eq)
    const value = eq < 0 ? argv[++i] : argv[i].slice(eq + 1)
    if (!flags.has(flag) || value === undefined) {
      process.stderr.write(USAGE)
      process.exit(2)
    }
    if (flag === '--port') port = Number(value)
    else if (flag === '--host') host = value
    else if (flag === '--fault-rate') faultRate = value.trim() === '' ? NaN : Number(value)
    else seed = value.trim() === '' ? NaN : Number(value)
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`invalid port: ${port}\n`)
    process.exit(2)
  }
  if (!(faultRate >= 0 && faultRate <= 1)) {
    process.stderr.write(`invalid fault rate (0..1): ${faultRate}\n`)
    process.exit(2)
  }
  if (!Number.isSafeInteger(seed)) {
    process.stderr.write(`invalid seed (integer): ${seed}\n`)
    process.exit(2)
  }
  const script = faultRate > 0 ? seededFaultScript({ rate: faultRate, seed }) : null
  const mock = await startMockBlender({ port, host, script })
  // stderr, like everything this process says: stdout stays free, as in the pool itself.
  process.stderr.write(`mock-blender listening on ${mock.host}:${mock.port}\n`)
  process.on('SIGUSR2', () => process.stderr.write(`${JSON.stringify(mock.snapshot())}\n`))
  const shutdown = () => mock.stop().then(() => process.exit(0))
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
  return mock
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runCli(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`mock-blender: ${err.message}\n`)
    process.exit(1)
  })
}
