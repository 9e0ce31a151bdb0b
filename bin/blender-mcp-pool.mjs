#!/usr/bin/env node
// blender-mcp-pool: ping, exec and doctor for the Blender MCP add-on (see docs/cli.md).
// Stdout carries results only (a reply, a ping line, doctor's report); errors go to stderr.
import dns from 'node:dns/promises'
import fs from 'node:fs'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'

const EXIT = { OK: 0, FAILED: 1, USAGE: 2, DNS: 3, REFUSED: 4, TIMEOUT: 5, PROTOCOL: 6 }
const PROBE_MS = 2000 // how long each framing probe of `doctor` waits for a reply
const SLOW_MS = 1000 // a median round trip above this is worth a warning

const USAGE = `Usage: blender-mcp-pool <command> [options]

Commands:
  ping                     one get_scene_info round trip: prints "ok <host>:<port> <ms> ms"
  exec <type> [params]     runs one command; prints Blender's reply JSON (params: a JSON object)
  doctor                   diagnoses the connection: host, port, framing, latency
  mock [--port N] [--host H] [--fault-rate R] [--seed S]
                           runs the mock Blender add-on (for tests without Blender) until
                           SIGINT/SIGTERM; its listening line goes to stderr

Options:
  --host H                 Blender add-on host (default: BLENDER_HOST or localhost)
  --port P                 Blender add-on port (default: BLENDER_PORT or 9876)
  --framing F              json | length-prefixed (default: json; doctor detects it)
  --timeout MS             connect and reply timeout in ms (default: 5000)
  --count N                doctor: round trips timed in the latency check (default: 5)
  --json                   ping, doctor: print one JSON object instead of lines
  --pretty                 exec: indent the reply JSON
  --plain                  doctor: "ok"/"FAIL" instead of ✓/✗ (the default when not a TTY)
  -h, --help               this help
  --version                the version

Exit codes:
  0  ok
  1  Blender reachable, but the command failed or replied status "error"
  2  usage error (bad option, bad JSON params)
  3  cannot resolve the host
  4  connection refused: nothing listens on the port
  5  timeout (connect or reply): host unreachable, or Blender busy
  6  protocol problem: unknown framing or invalid reply

See docs/cli.md (shipped with the package) for examples and troubleshooting.
`

const ADVICE = {
  dns: () => 'check --host / BLENDER_HOST (spelling, VPN, /etc/hosts); for Blender on this machine use 127.0.0.1',
  refused: (o) =>
    `nothing listens on ${addr(o)}: is Blender running with the MCP add-on started (its 'Connect to Claude'/'Start MCP Server' button)? wrong port? (BLENDER_PORT). Meanwhile pool calls fail with ERR_CONNECT after connectRetryTimeout (default 2 s); raise it if Blender is still starting`,
  unreachable: (o) =>
    `host unreachable / firewall: check that ${o.host} is the right machine and is up, and that a firewall lets TCP port ${o.port} through (Blender's add-on listens on localhost only unless told otherwise)`,
  reset: (o) =>
    `${addr(o)} reset the connection: another program on this port? (BLENDER_PORT); otherwise restart the add-on's server in Blender`,
  busy: () =>
    `the add-on accepts connections but does not answer: Blender runs one command at a time on its main thread, whatever the number of connections, so another client's long command (a render, an import) or a modal dialog holds every other command; let it finish or cancel it, or raise --timeout. Pool calls name such a command in their timeout errors when it is their own pool's`,
  idle: () => "if Blender is idle, it may expect the other framing: run 'blender-mcp-pool doctor'",
  closed: () =>
    "Blender closed the connection without a full reply: the add-on hit an error (see Blender's system console), or it expects the other framing: run 'blender-mcp-pool doctor'",
  slow: () => 'Blender is slow to answer: busy main thread? (a heavy scene, a render, a modal operator)',
  protocol: (o) =>
    `the reply is not what the MCP add-on sends: run 'blender-mcp-pool doctor' (it detects json / length-prefixed framing) and pass --framing; or another program listens on ${o.port}`,
  failed: () =>
    "the add-on is running but the command failed: see Blender's system console (Window > Toggle System Console) for the Python error",
}

/** A failure with its exit code and what to do about it. */
class CliError extends Error {
  constructor(exit, message, advice) {
    super(message)
    this.exit = exit
    this.advice = advice
  }
}

const addr = ({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)
const fmt = (ms) => ms.toFixed(1)
const usage = (message) => new CliError(EXIT.USAGE, message)

function intOption(value, name, min, max) {
  if (!/^\s*\d+\s*$/.test(value) || Number(value) < min || Number(value) > max) {
    throw usage(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`)
  }
  return Number(value)
}

function parseOptions(argv) {
  const [string, boolean] = [{ type: 'string' }, { type: 'boolean' }]
  const options = {
    host: string,
    port: string,
    framing: string,
    timeout: string,
    count: string,
    json: boolean,
    pretty: boolean,
    plain: boolean,
    help: { ...boolean, short: 'h' },
    version: boolean,
  }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (err) {
    throw usage(err.message)
  }
  const {
    values: v,
    positionals: [command, ...args],
  } = parsed
  const o = { ...v, command, args }
  if (v.help || v.version) return o
  const env = process.env
  o.host = v.host ?? (env.BLENDER_HOST || 'localhost')
  if (o.host === '') throw usage('--host must not be empty')
  o.port =
    v.port !== undefined
      ? intOption(v.port, '--port', 1, 65535)
      : env.BLENDER_PORT
        ? intOption(env.BLENDER_PORT, 'BLENDER_PORT', 1, 65535)
        : 9876
  o.timeout = v.timeout === undefined ? 5000 : intOption(v.timeout, '--timeout', 1, 2147483647)
  o.count = v.count === undefined ? 5 : intOption(v.count, '--count', 1, 1000)
  if (v.framing !== undefined && v.framing !== 'json' && v.framing !== 'length-prefixed') {
    throw usage(`--framing must be json or length-prefixed, got ${JSON.stringify(v.framing)}`)
  }
  const arity = { ping: [0, 0], doctor: [0, 0], exec: [1, 2] }[command]
  if (command === undefined) throw usage('no command given (ping, exec or doctor)')
  if (!arity) throw usage(`unknown command: ${command} (ping, exec or doctor)`)
  if (args.length < arity[0]) throw usage(`${command}: the command type is missing`)
  if (args.length > arity[1]) throw usage(`${command}: unexpected argument: ${args[arity[1]]}`)
  if (command === 'exec') {
    o.type = args[0]
    if (o.type === '') throw usage('exec: the command type must not be empty')
    if (args[1] !== undefined) {
      try {
        o.params = JSON.parse(args[1])
      } catch (err) {
        throw usage(`exec: params are not valid JSON: ${err.message}`)
      }
      if (o.params === null || typeof o.params !== 'object' || Array.isArray(o.params)) {
        throw usage(
          `exec: params must be a JSON object, got ${Array.isArray(o.params) ? 'an array' : JSON.stringify(o.params)}`,
        )
      }
    }
  }
  return o
}

/** A failed connect (net error) as a CliError. */
function connectFailure(err, o) {
  const code = err.code ?? err.errors?.[0]?.code
  if (['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'ENODATA'].includes(code)) {
    return new CliError(EXIT.DNS, `cannot resolve ${o.host} (${code})`, ADVICE.dns())
  }
  if (code === 'ECONNREFUSED') return new CliError(EXIT.REFUSED, 'connection refused', ADVICE.refused(o))
  if (code === 'ECONNRESET') return new CliError(EXIT.REFUSED, 'connection reset', ADVICE.reset(o))
  if (['ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN'].includes(code)) {
    const what = code === 'ETIMEDOUT' ? `no connection within ${o.timeout} ms` : code
    return new CliError(EXIT.TIMEOUT, what, ADVICE.unreachable(o))
  }
  return new CliError(EXIT.REFUSED, `cannot connect (${code ?? err.message})`, ADVICE.refused(o))
}

/** A pool rejection as a CliError. */
function poolFailure(err, o) {
  if (err instanceof CliError) return err
  if (err instanceof TypeError || err instanceof RangeError) return usage(err.message)
  const m = String(err?.message ?? err)
  switch (err?.code) {
    case 'ERR_CONNECT':
      if (/refused/i.test(m)) return new CliError(EXIT.REFUSED, m, ADVICE.refused(o))
      if (/lookup|resolve|not known|no address/i.test(m)) return new CliError(EXIT.DNS, m, ADVICE.dns())
      return new CliError(EXIT.TIMEOUT, m, ADVICE.unreachable(o))
    case 'ERR_POOL_TIMEOUT':
    case 'ERR_RESPONSE_TIMEOUT':
      return new CliError(EXIT.TIMEOUT, m, `${ADVICE.busy()}\n  ${ADVICE.idle()}`)
    case 'ERR_CONNECTION_CLOSED':
      return new CliError(EXIT.PROTOCOL, m, ADVICE.closed())
    case 'ERR_INVALID_RESPONSE':
    case 'ERR_RESPONSE_TOO_LARGE':
      return new CliError(EXIT.PROTOCOL, m, ADVICE.protocol(o))
    default:
      return new CliError(EXIT.FAILED, m, ADVICE.failed())
  }
}

/** Opens (and closes) one TCP connection; resolves to the time it took, or rejects a CliError. */
function tcpConnect(o) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const socket = net.connect({ host: o.host, port: o.port })
    const fail = (err) => {
      clearTimeout(timer)
      socket.destroy()
      reject(connectFailure(err, o))
    }
    const timer = setTimeout(() => fail(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })), o.timeout)
    socket.once('error', fail)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(performance.now() - t0)
    })
  })
}

const isReply = (v) =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && (v.status === 'success' || v.status === 'error')

/**
 * Reads one reply from `buf`: null while incomplete, else { outcome: 'ok' | 'garbage', reply }.
 * It decodes and parses the whole buffer again on every chunk: quadratic in the reply's size,
 * which is fine for a probe whose reply is one small get_scene_info (the pool itself frames
 * replies incrementally, in Rust). Not for big replies.
 */
function readReply(buf, framing) {
  let text
  if (framing === 'json') {
    text = buf.toString('utf8').trimStart()
    if (text === '') return null
    if (text[0] !== '{') return { outcome: 'garbage' }
  } else {
    const len = buf.length >= 4 ? buf.readUInt32BE(0) : 0
    if (len > 64 * 1024 * 1024) return { outcome: 'garbage' } // bare JSON text, not a length
    if (buf.length < 4 || buf.length < 4 + len) return null
    text = buf.subarray(4, 4 + len).toString('utf8')
  }
  try {
    const reply = JSON.parse(text)
    return isReply(reply) ? { outcome: 'ok', reply } : { outcome: 'garbage' }
  } catch {
    return framing === 'json' ? null : { outcome: 'garbage' } // bare JSON may still be arriving
  }
}

/**
 * Sends get_scene_info on a fresh raw socket in `framing` and waits up to `ms` for a reply.
 * Resolves { outcome: 'ok' | 'garbage' | 'timeout' | 'closed', bytes, sample, ms, reply }.
 */
function probe(o, framing, ms) {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(JSON.stringify({ type: 'get_scene_info' }))
    const head = Buffer.alloc(4)
    head.writeUInt32BE(body.length)
    const socket = net.connect({ host: o.host, port: o.port })
    let [buf, sent, done] = [Buffer.alloc(0), 0, false]
    const finish = (outcome, extra = {}) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      const sample = buf
        .subarray(0, 60)
        .toString('utf8')
        .replace(/[^\x20-\x7e]/g, '.')
      resolve({ outcome, bytes: buf.length, sample, ms: performance.now() - sent, ...extra })
    }
    const timer = setTimeout(() => finish('timeout'), ms)
    socket.on('connect', () => {
      sent = performance.now()
      socket.write(framing === 'json' ? Buffer.concat([body, Buffer.from('\n')]) : Buffer.concat([head, body]))
    })
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      const r = readReply(buf, framing)
      if (r) finish(r.outcome, r)
    })
    socket.on('error', (err) => {
      // after connecting, a reset is one more way of closing
      if (sent) finish('closed')
      else if (!done) {
        done = true
        clearTimeout(timer)
        socket.destroy()
        reject(connectFailure(err, o))
      }
    })
    socket.on('close', () => finish('closed'))
  })
}

/** Runs fn(pool) with a pool for one-off calls, mapping rejections to CliErrors. */
async function withPool(o, framing, fn) {
  const { ConnectionPool } = await import('../index.mjs')
  let pool
  try {
    pool = new ConnectionPool({
      host: o.host,
      port: o.port,
      framing,
      minConnections: 0,
      maxConnections: 1,
      connectionTimeout: o.timeout,
      connectRetryTimeout: 0,
      socketTimeout: o.timeout,
    })
    return await fn(pool)
  } catch (err) {
    throw poolFailure(err, o)
  } finally {
    await pool?.shutdown()
  }
}

/** ping and exec: one command through a pool (one connect attempt, no retries), after a plain
 * connect whose error code tells refused, unreachable and unresolved apart. Rejects a CliError. */
async function oneCommand(o, fn) {
  await tcpConnect(o)
  return withPool(o, o.framing ?? 'json', fn)
}

async function ping(o) {
  const out = { ok: true, host: o.host, port: o.port, framing: o.framing ?? 'json' }
  try {
    out.ms = await oneCommand(o, async (pool) => {
      const t0 = performance.now()
      await pool.execute('get_scene_info')
      return performance.now() - t0
    })
  } catch (err) {
    if (!(err instanceof CliError) || !o.json) throw err
    Object.assign(out, { ok: false, exitCode: err.exit, error: err.message, advice: err.advice })
  }
  process.stdout.write(o.json ? `${JSON.stringify(out)}\n` : `ok ${addr(o)} ${fmt(out.ms)} ms\n`)
  return out.exitCode ?? EXIT.OK
}

async function exec(o) {
  const text = await oneCommand(o, (pool) => pool.executeRaw(o.type, o.params))
  const reply = JSON.parse(text)
  process.stdout.write(`${o.pretty ? JSON.stringify(reply, null, 2) : text.trim()}\n`)
  if (reply.status !== 'error') return EXIT.OK
  process.stderr.write(`blender-mcp-pool: ${o.type} failed: ${reply.message ?? '(no message)'}\n`)
  return EXIT.FAILED
}

async function doctor(o) {
  const tty = process.stdout.isTTY && !o.plain
  const marks = tty ? { ok: '✓', warn: '!', fail: '✗' } : { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' }
  const state = { framing: null, latency: null }
  const steps = {
    async resolve() {
      if (net.isIP(o.host)) return `${o.host} is an IP address: no lookup needed`
      let timer
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(), { code: 'EAI_AGAIN' })), o.timeout)
      })
      try {
        const found = await Promise.race([dns.lookup(o.host, { all: true }), timeout])
        return `${o.host} → ${found.map((a) => a.address).join(', ')}`
      } catch (err) {
        throw new CliError(EXIT.DNS, `cannot resolve ${o.host} (${err.code ?? err.message})`, ADVICE.dns())
      } finally {
        clearTimeout(timer)
      }
    },
    async connect() {
      const ms = await tcpConnect(o).catch((err) => {
        err.message = `${addr(o)}: ${err.message}`
        throw err
      })
      return `${addr(o)} accepts TCP connections (${fmt(ms)} ms)`
    },
    async framing() {
      const order = o.framing === 'length-prefixed' ? ['length-prefixed', 'json'] : ['json', 'length-prefixed']
      const tried = []
      for (const framing of order) {
        const r = await probe(o, framing, Math.min(PROBE_MS, o.timeout))
        tried.push({ framing, ...r })
        if (r.outcome !== 'ok') continue
        state.framing = framing
        const detail = `${framing} (get_scene_info answered in ${fmt(r.ms)} ms)`
        if (o.framing === undefined || o.framing === framing) return detail
        throw new CliError(
          EXIT.PROTOCOL,
          `the server speaks ${framing}, not ${o.framing}`,
          `drop --framing (doctor detects it) or pass --framing ${framing}; configure your MCP server's pool with framing: '${framing}'`,
        )
      }
      const what = tried
        .map(
          (t) =>
            `${t.framing}: ${t.outcome === 'timeout' && t.bytes ? 'partial reply' : t.outcome}${t.bytes ? ` "${t.sample}"` : ''}`,
        )
        .join('; ')
      if (tried.every((t) => t.outcome === 'timeout' && t.bytes === 0)) {
        throw new CliError(
          EXIT.TIMEOUT,
          `unknown: no reply within ${Math.min(PROBE_MS, o.timeout)} ms in either framing`,
          ADVICE.busy(),
        )
      }
      const advice = tried.every((t) => t.outcome === 'closed' && t.bytes === 0)
        ? `${addr(o)} closes connections without answering: the add-on's server may be failing (Blender's system console shows its errors): restart it; or another program listens on ${o.port}`
        : `${addr(o)} answers, but not like the Blender MCP add-on: another program on this port? (BLENDER_PORT); or an add-on version this tool does not know`
      throw new CliError(EXIT.PROTOCOL, `unknown (${what})`, advice)
    },
    async latency() {
      const times = await withPool(o, state.framing, async (pool) => {
        const out = []
        for (let i = 0; i < o.count; i++) {
          const t0 = performance.now()
          const reply = await pool.execute('get_scene_info')
          if (reply.status === 'error') {
            throw new CliError(
              EXIT.FAILED,
              `get_scene_info replied an error: ${reply.message ?? '(no message)'}`,
              ADVICE.failed(),
            )
          }
          out.push(performance.now() - t0)
        }
        return out
      })
      times.sort((a, b) => a - b)
      const median = (times[(times.length - 1) >> 1] + times[times.length >> 1]) / 2
      state.latency = { count: times.length, min: times[0], median, max: times.at(-1) }
      const detail = `min ${fmt(times[0])} / median ${fmt(median)} / max ${fmt(times.at(-1))} ms over ${times.length} round trips`
      return median > SLOW_MS ? { status: 'warn', detail, advice: ADVICE.slow() } : detail
    },
  }
  const checks = []
  let exit = EXIT.OK
  for (const [name, step] of Object.entries(steps)) {
    let check
    try {
      const r = await step()
      check = typeof r === 'string' ? { name, status: 'ok', detail: r } : { name, ...r }
    } catch (err) {
      if (!(err instanceof CliError)) throw err
      check = { name, status: 'fail', detail: err.message, advice: err.advice }
      exit = err.exit
    }
    checks.push(check)
    if (!o.json) {
      const advice = check.advice ? `${tty ? '  → ' : '     '}${check.advice}\n` : ''
      process.stdout.write(`${marks[check.status]} ${name}: ${check.detail}\n${advice}`)
    }
    if (exit !== EXIT.OK) break
  }
  if (o.json) {
    const out = { ok: exit === EXIT.OK, exitCode: exit, host: o.host, port: o.port, ...state, checks }
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
  }
  return exit
}

async function main(argv) {
  if (argv[0] === 'mock') {
    // The mock has flags of its own, parsed by it; it runs until a signal stops it.
    const { runCli } = await import('../mock/blender-mock.mjs')
    try {
      await runCli(argv.slice(1))
    } catch (err) {
      process.stderr.write(`blender-mcp-pool: mock: ${err.message}\n`)
      return EXIT.FAILED
    }
    return undefined
  }
  let o
  try {
    o = parseOptions(argv)
  } catch (err) {
    process.stderr.write(`blender-mcp-pool: ${err.message}\nTry 'blender-mcp-pool --help'.\n`)
    return EXIT.USAGE
  }
  if (o.help) {
    process.stdout.write(USAGE)
    return EXIT.OK
  }
  if (o.version) {
    const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    process.stdout.write(`${pkg.version}\n`)
    return EXIT.OK
  }
  try {
    return await { ping, exec, doctor }[o.command](o)
  } catch (err) {
    if (!(err instanceof CliError)) throw err
    const what = o.command === 'exec' ? `exec ${o.type}` : o.command
    process.stderr.write(
      `blender-mcp-pool: ${what} ${addr(o)} failed: ${err.message}\n${err.advice ? `  ${err.advice}\n` : ''}`,
    )
    return err.exit
  }
}

process.env.LOG_LEVEL ??= 'error' // the pool's own logs (stderr): its retries are reported by us
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    process.stderr.write(`blender-mcp-pool: internal error: ${err?.stack ?? err}\n`)
    process.exitCode = EXIT.FAILED
  },
)
