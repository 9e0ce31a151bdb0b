// The benchmark's workloads and contenders: what each run sends, how many times, and how a reply
// is checked. Shared by bench/run.mjs (the plan) and bench/contender.mjs (the timed loop); the
// Rust client (bench/native) is given the same requests through its command-line options.

/** 1 MB = 10^6 bytes throughout the benchmark (reply sizes and RSS figures). */
export const MB = 1_000_000

/** Params of every small `echo` request (the server echoes them back as `result`). */
export const SMALL_PARAMS = Object.freeze({ name: 'Cube', location: [1, 2, 3], tag: 'bench' })

/** One line of the generated `execute_code` script; the Rust side has the same (`CODE_LINE`). */
export const CODE_LINE = 'bpy.ops.mesh.primitive_cube_add(size=2, location=(0, 0, 0))\n'

/** An `execute_code` script of exactly `len` characters. */
export function makeCode(len) {
  return CODE_LINE.repeat(Math.ceil(len / CODE_LINE.length) + 1).slice(0, len)
}

/**
 * The contenders, in the order they run within each round.
 * - native: blender-mcp-pool (this repository), `execute()`
 * - original: the TypeScript pool being replaced (`--baseline PATH`, loaded with tsx)
 * - raw: raw Node sockets, no pool (the JS floor)
 * - rust: the `rust-client` binary, blocking std sockets (the floor without JS)
 */
export const CONTENDERS = [
  { id: 'native', label: 'blender-mcp-pool' },
  { id: 'original', label: 'original (TS)' },
  { id: 'raw', label: 'raw Node socket' },
  { id: 'rust', label: 'Rust client' },
  // The same pool built from another checkout (BENCH_REF_DIR): a change measured against the
  // commit before it, side by side in one run. Only run when asked for (--contenders).
  { id: 'native-ref', label: 'blender-mcp-pool (BENCH_REF_DIR)', optIn: true },
]

/** The contenders that run the fresh-pool workloads: the pool itself, before and after. */
const FRESH_CONTENDERS = ['native', 'native-ref']

/**
 * Workloads. `ops`/`warmup` are [full run, --short run]. `originalOps`/`originalWarmup` cap the
 * original pool where its quadratic reply framing would take minutes (about 4 s per 20 MB reply).
 * `connections` is the number of sockets: the pools' `maxConnections`, the raw floor's sockets.
 */
export const WORKLOADS = [
  { name: 'c1', kind: 'echo', concurrency: 1, connections: 5, ops: [20000, 2000], warmup: [2000, 200] },
  { name: 'c16', kind: 'echo', concurrency: 16, connections: 5, ops: [40000, 4000], warmup: [4000, 400] },
  bigReply('reply-1MB', 1, [20, 5], [3, 1], [20, 5], [2, 1]),
  bigReply('reply-5MB', 5, [10, 3], [2, 1], [10, 3], [1, 1]),
  bigReply('reply-20MB', 20, [5, 2], [1, 1], [2, 1], [0, 0]),
  bigReply('reply-50MB', 50, [3, 1], [1, 1], [1, 1], [0, 0]),
  // One 20 MB call in a fresh process, no warm-up: the peak memory of a single big reply (the
  // other workloads' peak also holds garbage from earlier calls that no GC has collected yet).
  bigReply('reply-20MB-once', 20, [1, 1], [0, 0], [1, 1], [0, 0]),
  // The same 20 MB arriving over ~200 ms (1 MB every 10 ms): how busy is the event loop while
  // a big reply trickles in, as it does from a Blender that is still producing it?
  { ...bigReply('reply-20MB-paced', 20, [5, 1], [1, 0], [1, 1], [0, 0]), paceMs: 10 },
  { name: 'request-5MB', kind: 'exec', bytes: 5 * MB, concurrency: 1, connections: 5, ops: [10, 3], warmup: [2, 1] },
  // Issue 14: a big reply on a pool created for it, as an MCP server meets its first big reply
  // (no warm-up; each call on a new pool, its connection still opening when the call starts).
  // `raw`: executeRaw, the text as it is; `json`: execute, the text JSON.parsed. Either way the
  // same process also times a bare JSON.parse of the same text, for the target "execute within
  // a bare JSON.parse + 20 ms".
  freshReply('raw-20MB-fresh', 20, 'raw', [10, 2]),
  freshReply('json-20MB-fresh', 20, 'json', [10, 2]),
  freshReply('raw-50MB-fresh', 50, 'raw', [6, 1]),
  freshReply('json-50MB-fresh', 50, 'json', [6, 1]),
  // Issue 20: big structured replies against the plain string of the same size, one warm pool,
  // one process: per round, executeRaw of each shape, execute of the structured ones, and a bare
  // JSON.parse of the same texts (bench/native/src/shapes.rs builds them).
  shapesReply('shapes-1MB', 1, [20, 3]),
  shapesReply('shapes-5MB', 5, [15, 2]),
  shapesReply('shapes-20MB', 20, [9, 1]),
  shapesReply('shapes-50MB', 50, [5, 1]),
]

/** The shapes of the `shapes-*` workloads: the plain string first, the one they are held to. */
export const SHAPES = ['string', 'scene', 'printed']

/** What a `shapes-*` workload times per call, each a median over its calls (µs). */
export const SHAPE_FIGURES = SHAPES.flatMap((shape) => [
  { key: `raw_${shape}`, what: 'executeRaw', shape },
  ...(shape === 'string' ? [] : [{ key: `json_${shape}`, what: 'execute', shape }, { key: `busy_${shape}`, what: 'execute (event loop busy)', shape }, { key: `parse_${shape}`, what: 'bare JSON.parse', shape }]),
])

function shapesReply(name, mb, ops) {
  return { name, kind: 'shapes', bytes: mb * MB, concurrency: 1, connections: 5, ops, warmup: [1, 1], contenders: FRESH_CONTENDERS }
}

function freshReply(name, mb, mode, ops) {
  return { name, kind: 'big', fresh: mode, bytes: mb * MB, concurrency: 1, connections: 5, ops, warmup: [0, 0], contenders: FRESH_CONTENDERS }
}

function bigReply(name, mb, ops, warmup, originalOps, originalWarmup) {
  return { name, kind: 'big', bytes: mb * MB, concurrency: 1, connections: 5, ops, warmup, originalOps, originalWarmup }
}

/** Whether `contender` runs `workload` at all (the fresh-pool workloads are the pool's alone). */
export function runsWorkload(workload, contender) {
  return !workload.contenders || workload.contenders.includes(contender)
}

/** How many timed and warm-up calls `contender` makes on `workload`. */
export function callCounts(workload, contender, short) {
  const pick = (pair) => pair[short ? 1 : 0]
  const capped = contender === 'original' && workload.originalOps
  return {
    ops: pick(capped ? workload.originalOps : workload.ops),
    warmup: pick(capped ? workload.originalWarmup : workload.warmup),
  }
}

/**
 * The request one call of `workload` sends, and the check its reply must pass.
 * Built once per process: the 5 MB script is made before the timed run, not in it.
 */
export function requestFor(workload) {
  switch (workload.kind) {
    case 'echo':
      return { type: 'echo', params: SMALL_PARAMS, check: checkStatus }
    case 'shapes':
      return { type: 'big', params: { bytes: workload.bytes }, check: checkStatus }
    case 'big':
      return { type: 'big', params: workload.paceMs ? { bytes: workload.bytes, pace_ms: workload.paceMs } : { bytes: workload.bytes }, check: checkLength(workload.bytes, (r) => (typeof r === 'string' ? r.length : -1)) }
    case 'exec':
      return {
        type: 'execute_code',
        params: { code: makeCode(workload.bytes) },
        check: checkLength(workload.bytes, (r) => r?.length), // the server reports the script's length
      }
    default:
      throw new Error(`unknown workload kind ${workload.kind}`)
  }
}

function checkStatus(reply) {
  if (reply?.status !== 'success') throw new Error(`unexpected reply: ${JSON.stringify(reply).slice(0, 200)}`)
}

/** A check that `lengthOf(reply.result)` is `expected`. */
function checkLength(expected, lengthOf) {
  return (reply) => {
    checkStatus(reply)
    const length = lengthOf(reply.result)
    if (length !== expected) throw new Error(`reply length ${length}, expected ${expected}`)
  }
}
