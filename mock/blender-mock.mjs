// Mock of the Blender MCP add-on's TCP socket server (see shared/reference/README.md, "The peer").
// Requests: one JSON object each (the client appends '\n'); replies: one JSON object, no delimiter.
// Used in-process by tests (startMockBlender) and as a CLI by the demo.
import net from 'node:net';
import { pathToFileURL } from 'node:url';

/** Names accepted by `MockBlender#setFault` / the `fault` property. */
export const FAULTS = Object.freeze(['close', 'garbage', 'invalid-utf8', 'non-object', 'bad-status',
  'bad-message', 'two-documents', 'no-reply', 'half-reply', 'trickle']);

/** Faults answered with fixed bytes, without running the command. */
const FIXED_REPLIES = {
  garbage: Buffer.from('not json at all}'),
  'invalid-utf8': Buffer.concat([Buffer.from('{"status":"success","result":"'),
    Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
  'non-object': Buffer.from('[1,2,3]'),
  'bad-status': Buffer.from('{"status":"weird","result":1}'),
  'bad-message': Buffer.from('{"status":"error","message":42}'),
};
const EXTRA_DOCUMENT = Buffer.from('{"status":"success","result":"extra"}');
const PRIMITIVE_NAMES = { UV_SPHERE: 'Sphere', ICO_SPHERE: 'Icosphere', MONKEY: 'Suzanne' };

/**
 * Incremental, linear-time splitter of a byte stream into JSON-object requests. Tracks brace
 * depth, strings and backslash escapes across chunks; skips whitespace between requests. Input
 * not starting with '{' is consumed up to the next '\n' and reported as one (invalid) request.
 */
class RequestSplitter {
  #parts = []; #depth = 0; #inString = false; #escape = false; #mode = 'idle'; // idle|object|junk

  /** Feeds a chunk; calls onRequest(bytes) per complete request; stops early if it returns false. */
  push(chunk, onRequest) {
    let start = this.#mode === 'idle' ? -1 : 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      let done = false;
      if (this.#mode === 'idle') {
        if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) continue;
        start = i;
        if (b === 0x7b) { this.#mode = 'object'; this.#depth = 1; } else this.#mode = 'junk';
      } else if (this.#mode === 'junk') {
        done = b === 0x0a;
      } else if (this.#inString) {
        if (this.#escape) this.#escape = false;
        else if (b === 0x5c) this.#escape = true;
        else if (b === 0x22) this.#inString = false;
      } else if (b === 0x22) this.#inString = true;
      else if (b === 0x7b || b === 0x5b) this.#depth++;
      else if (b === 0x7d || b === 0x5d) done = --this.#depth === 0;
      if (!done) continue;
      this.#parts.push(chunk.subarray(start, i + 1));
      const bytes = this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts);
      this.#parts = []; this.#mode = 'idle'; start = -1;
      if (onRequest(bytes) === false) return;
    }
    if (start >= 0) this.#parts.push(chunk.subarray(start));
  }
}

/**
 * A running mock Blender server. Create with `startMockBlender()`. Counters and `requestLog`
 * are plain public fields; `fault` is a one-shot fault for the next request received.
 */
export class MockBlender {
  /** @type {number} */ port = 0;
  /** @type {string} */ host = '127.0.0.1';
  connectionsOpened = 0;
  openConnections = 0;
  maxOpenConnections = 0;
  requests = 0;
  /** @type {{ connectionId: number, type: string | null, params: unknown }[]} */
  requestLog = [];
  bytesReceived = 0;
  /** In-memory scene: object name -> { type, location }. */
  scene = new Map([['Cube', { type: 'MESH', location: [0, 0, 0] }],
    ['Camera', { type: 'CAMERA', location: [7.36, -6.93, 4.96] }],
    ['Light', { type: 'LIGHT', location: [4.08, 1.01, 5.9] }]]);

  #server; #handlers; #fault = null; #sticky = false;
  #queue = Promise.resolve(); #conns = new Set(); #waiters = new Set(); #timers = new Set();
  #stopped = null;

  /** @param {net.Server} server @param {Record<string, Function>} handlers */
  constructor(server, handlers = {}) {
    this.#server = server;
    this.#handlers = { ...this.#builtins(), ...handlers };
    server.on('connection', (socket) => this.#onConnection(socket));
  }

  /** Fault applied to the next request received (one-shot unless set sticky via setFault). */
  get fault() { return this.#fault; }
  set fault(name) { this.setFault(name); }

  /**
   * Sets (or clears, with null) the fault for the next request; `sticky` keeps it until cleared.
   * @param {string | null} name @param {{ sticky?: boolean }} [options]
   */
  setFault(name, { sticky = false } = {}) {
    if (name !== null && !FAULTS.includes(name)) throw new TypeError(`Unknown fault: ${name}`);
    this.#fault = name;
    this.#sticky = name !== null && sticky;
  }

  /** Destroys every open socket; resolves once the server has seen them all closed. */
  closeAllConnections() {
    return Promise.all([...this.#conns].map((c) => { c.socket.destroy(); return c.closed; }))
      .then(() => undefined);
  }

  /**
   * Resolves (with this mock) once `predicate(mock)` is true, re-checked after every server event
   * (connection, close, request); rejects after `timeoutMs`.
   * @param {(mock: MockBlender) => boolean} predicate @param {number} [timeoutMs]
   */
  waitFor(predicate, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const waiter = { predicate, resolve, reject, timer: null };
      waiter.timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`mock-blender waitFor timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(waiter);
      this.#notify();
    });
  }

  /** Closes the listener and destroys all sockets; resolves when closed. Idempotent. */
  stop() {
    this.#stopped ??= new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const c of this.#conns) c.socket.destroy();
      for (const t of this.#timers) clearTimeout(t);
      this.#timers.clear();
    });
    return this.#stopped;
  }

  #notify() {
    for (const w of this.#waiters) {
      let ok;
      try { ok = w.predicate(this); } catch (err) { ok = err; }
      if (!ok) continue;
      this.#waiters.delete(w);
      clearTimeout(w.timer);
      if (ok instanceof Error) w.reject(ok); else w.resolve(this);
    }
  }

  #onConnection(socket) {
    if (this.#stopped) { socket.destroy(); return; }
    const conn = { id: ++this.connectionsOpened, socket, chain: Promise.resolve(), closed: null };
    conn.closed = new Promise((resolve) => socket.once('close', resolve));
    this.#conns.add(conn);
    this.openConnections++;
    this.maxOpenConnections = Math.max(this.maxOpenConnections, this.openConnections);
    socket.setNoDelay(true);
    socket.on('error', () => {}); // ECONNRESET, EPIPE...: the 'close' event follows; never crash
    const splitter = new RequestSplitter();
    socket.on('data', (chunk) => {
      this.bytesReceived += chunk.length;
      splitter.push(chunk, (bytes) => this.#onRequest(conn, bytes));
    });
    socket.on('close', () => {
      this.#conns.delete(conn);
      this.openConnections--;
      this.#notify();
    });
    this.#notify();
  }

  /** Records a complete request and queues its handling; returns false if the socket is gone. */
  #onRequest(conn, bytes) {
    if (conn.socket.destroyed) return false;
    let req = null;
    try {
      const parsed = JSON.parse(bytes.toString('utf8'));
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) req = parsed;
    } catch { /* invalid JSON: req stays null */ }
    const fault = this.#fault;
    if (!this.#sticky) this.#fault = null;
    this.requests++;
    this.requestLog.push({ connectionId: conn.id, type: req ? req.type ?? null : null, params: req?.params });
    conn.chain = conn.chain.then(() => this.#respond(conn, req, fault)).catch(() => {});
    this.#notify();
    return true;
  }

  async #respond(conn, req, fault) {
    const { socket } = conn;
    if (fault === 'close') { socket.destroy(); return; }
    if (fault === 'no-reply') return;
    if (FIXED_REPLIES[fault]) { write(socket, FIXED_REPLIES[fault]); return; }
    const reply = Buffer.from(JSON.stringify(await this.#serial(() => this.#run(conn, req))));
    if (fault === 'two-documents') write(socket, Buffer.concat([reply, EXTRA_DOCUMENT]));
    else if (fault === 'half-reply') {
      if (!socket.destroyed) socket.write(reply.subarray(0, reply.length >> 1), () => socket.destroy());
    } else if (fault === 'trickle') await trickle(socket, reply);
    else write(socket, reply);
  }

  /** Runs fn after every previously queued command, server-wide (Blender's single main thread). */
  #serial(fn) {
    const result = this.#queue.then(fn);
    this.#queue = result.then(() => {}, () => {});
    return result;
  }

  async #run(conn, req) {
    if (req === null) return { status: 'error', message: 'Invalid JSON' };
    const handler = Object.hasOwn(this.#handlers, req.type) ? this.#handlers[req.type] : null;
    if (typeof handler !== 'function') {
      return { status: 'error', message: `Unknown command type: ${req.type}` };
    }
    try {
      const ctx = { connectionId: conn.id, mock: this, scene: this.scene };
      const result = await handler(req.params ?? {}, ctx);
      return { status: 'success', result: result === undefined ? null : result };
    } catch (err) {
      return { status: 'error', message: err instanceof Error ? err.message : String(err) };
    }
  }

  #builtins() {
    const scene = this.scene;
    const mustFind = (name) => {
      if (!scene.has(name)) throw new Error(`Object not found: ${name}`);
      return scene.get(name);
    };
    const uniqueName = (base) => {
      for (let i = 0, n = base; ; n = `${base}.${String(++i).padStart(3, '0')}`) {
        if (!scene.has(n)) return n;
      }
    };
    return {
      get_scene_info: () => ({ name: 'Scene', object_count: scene.size, objects: [...scene.keys()] }),
      get_object_info: ({ name }) => {
        const obj = mustFind(name);
        return { name, type: obj.type, location: [...obj.location] };
      },
      create_primitive: ({ type = 'CUBE', name, location = [0, 0, 0] }) => {
        const upper = String(type).toUpperCase();
        const base = typeof name === 'string' && name ? name
          : PRIMITIVE_NAMES[upper] ?? upper.charAt(0) + upper.slice(1).toLowerCase();
        const unique = uniqueName(base);
        scene.set(unique, { type: 'MESH', location: Array.isArray(location) ? [...location] : [0, 0, 0] });
        return { name: unique };
      },
      delete_object: ({ name }) => {
        mustFind(name);
        scene.delete(name);
        return { deleted: name };
      },
      execute_code: ({ code }) => {
        const m = typeof code === 'string' ? /^print\("x" \* (\d+)\)$/.exec(code) : null;
        return { executed: true, result: m ? 'x'.repeat(Number(m[1])) + '\n' : '' };
      },
      echo: (params) => params,
      sleep: ({ ms = 0 }) => new Promise((resolve) => {
        const t = setTimeout(() => { this.#timers.delete(t); resolve({ slept: ms }); }, Number(ms) || 0);
        this.#timers.add(t);
      }),
      big: ({ bytes = 0 }) => 'a'.repeat(Math.max(0, Number(bytes) || 0)),
      fail: ({ message = 'fail' }) => { throw new Error(String(message)); },
    };
  }
}

function write(socket, bytes) {
  if (!socket.destroyed) socket.write(bytes);
}

/** Writes bytes one per setImmediate tick; stops if the socket goes away. */
function trickle(socket, bytes) {
  return new Promise((resolve) => {
    let i = 0;
    const step = () => {
      if (socket.destroyed || i >= bytes.length) { resolve(); return; }
      socket.write(bytes.subarray(i, ++i));
      setImmediate(step);
    };
    step();
  });
}

/**
 * Starts a mock Blender add-on server.
 * @param {{ port?: number, host?: string,
 *   handlers?: Record<string, (params: any, ctx: { connectionId: number, mock: MockBlender,
 *     scene: Map<string, { type: string, location: number[] }> }) => unknown> }} [options]
 *   port 0 (default) picks a free port; handlers add or override commands (throw => error reply).
 * @returns {Promise<MockBlender>}
 */
export async function startMockBlender(options = {}) {
  const { port = 0, host = '127.0.0.1', handlers = {} } = options;
  const server = net.createServer();
  const mock = new MockBlender(server, handlers);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  server.on('error', () => {});
  mock.host = host;
  mock.port = /** @type {net.AddressInfo} */ (server.address()).port;
  return mock;
}

/** CLI: node mock/blender-mock.mjs [--port N] [--host H] */
async function main(argv) {
  let port = Number(process.env.BLENDER_PORT ?? 9876);
  let host = '127.0.0.1';
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = inline ?? argv[++i];
    if ((flag !== '--port' && flag !== '--host') || value === undefined) {
      process.stderr.write(`usage: blender-mock.mjs [--port N] [--host H]\n`);
      process.exit(2);
    }
    if (flag === '--port') port = Number(value);
    else host = value;
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`invalid port: ${port}\n`);
    process.exit(2);
  }
  const mock = await startMockBlender({ port, host });
  process.stdout.write(`mock-blender listening on ${mock.host}:${mock.port}\n`);
  const shutdown = () => mock.stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`mock-blender: ${err.message}\n`);
    process.exit(1);
  });
}
