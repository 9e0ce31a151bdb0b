// The JS floor of the benchmark: raw `net.Socket`s and no pool. A call writes
// `JSON.stringify({type, params}) + '\n'`, collects chunks, finds the end of the first JSON object
// incrementally (ReplyScanner: linear however the reply is chunked) and JSON.parses it.
// `RawClient` with one socket is the concurrency-1 floor; with several (c16 uses 5, like the
// pools' maxConnections) callers queue first-in first-out for a free socket.
import net from 'node:net'

const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * Incremental end-of-JSON-object finder: brace depth, strings and escapes tracked across chunks.
 * Inside strings it jumps to the next `"` with `indexOf` and counts the backslashes before it.
 */
export class ReplyScanner {
  depth = 0
  inString = false
  escape = false // the next byte, inside a string, is escaped

  /** Feeds one chunk; returns the index just past the object's end in it, or -1. */
  push(chunk) {
    let i = 0
    while (i < chunk.length) {
      if (this.inString) {
        i = this.#skipString(chunk, i)
        continue
      }
      const b = chunk[i++]
      if (b === QUOTE) this.inString = true
      else if (b === 0x7b || b === 0x5b) this.depth++
      else if ((b === 0x7d || b === 0x5d) && --this.depth === 0) return i
    }
    return -1
  }

  /** Inside a string at `i`: returns the index past its closing quote, or the chunk's length. */
  #skipString(chunk, i) {
    if (this.escape) {
      this.escape = false
      return i + 1
    }
    for (let from = i; ; ) {
      const q = chunk.indexOf(QUOTE, from)
      if (q === -1) {
        this.escape = backslashesBefore(chunk, chunk.length, i) % 2 === 1
        return chunk.length
      }
      if (backslashesBefore(chunk, q, i) % 2 === 0) {
        this.inString = false
        return q + 1
      }
      from = q + 1 // an escaped quote
    }
  }
}

/** How many backslashes end `chunk[floor, end)`. */
function backslashesBefore(chunk, end, floor) {
  let n = 0
  while (end - n > floor && chunk[end - n - 1] === BACKSLASH) n++
  return n
}

/** One socket, one call at a time. */
class RawConnection {
  #socket
  #pending = null // { resolve, reject, scanner, chunks }

  constructor(socket) {
    this.#socket = socket
    socket.setNoDelay(true)
    socket.on('data', (chunk) => this.#onData(chunk))
    socket.on('error', (err) => this.#fail(err))
    socket.on('close', () => this.#fail(new Error('connection closed')))
  }

  static open(host, port) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => {
        socket.off('error', reject)
        resolve(new RawConnection(socket))
      })
      socket.once('error', reject)
    })
  }

  call(type, params) {
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject, scanner: new ReplyScanner(), chunks: [] }
      this.#socket.write(JSON.stringify(params === undefined ? { type } : { type, params }) + '\n')
    })
  }

  close() {
    this.#socket.destroy()
  }

  #onData(chunk) {
    const p = this.#pending
    if (!p) return this.#fail(new Error('bytes with no call in flight'))
    const end = p.scanner.push(chunk)
    if (end === -1) return void p.chunks.push(chunk)
    if (end !== chunk.length) return this.#fail(new Error('bytes after the reply'))
    p.chunks.push(chunk)
    this.#pending = null
    const text = p.chunks.length === 1 ? chunk.toString('utf8') : Buffer.concat(p.chunks).toString('utf8')
    try {
      p.resolve(JSON.parse(text))
    } catch (err) {
      p.reject(err)
    }
  }

  #fail(err) {
    const p = this.#pending
    this.#pending = null
    p?.reject(err)
  }
}

/** `size` raw connections; callers beyond that wait in a first-in first-out queue. */
export class RawClient {
  #idle
  #all
  #waiters = []

  constructor(connections) {
    this.#all = connections
    this.#idle = [...connections]
  }

  static async open(host, port, size) {
    const conns = await Promise.all(Array.from({ length: size }, () => RawConnection.open(host, port)))
    return new RawClient(conns)
  }

  async call(type, params) {
    const conn = this.#idle.pop() ?? (await new Promise((resolve) => this.#waiters.push(resolve)))
    try {
      return await conn.call(type, params)
    } finally {
      const next = this.#waiters.shift()
      if (next) next(conn)
      else this.#idle.push(conn)
    }
  }

  close() {
    for (const conn of this.#all) conn.close()
  }
}
