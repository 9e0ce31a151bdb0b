// Real Blender for the end-to-end tests and `npm run demo -- --blender`: find the executable, start `blender/mcp_server.py`
// inside it (background mode, factory settings), stop or kill it, restart it on the same port.
import { spawn } from 'node:child_process'
import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'

const SERVER_SCRIPT = fileURLToPath(new URL('./mcp_server.py', import.meta.url))
const LISTENING = /^blender-mcp-server listening on 127\.0\.0\.1:(\d+) framing=(\S+)$/
const START_TIMEOUT_MS = 60_000
const STOP_GRACE_MS = 5_000
const KEPT_LINES = 200

/** Every Blender started and not yet exited: killed if the test process exits first. */
const running = new Set()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

function isExecutableFile(file) {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

/**
 * The Blender executable: `BLENDER_BIN` if set (null when it is not an executable file), else
 * `blender` on the PATH (what `which blender` finds), else null.
 */
export function findBlender() {
  const fromEnv = process.env.BLENDER_BIN
  if (fromEnv) return isExecutableFile(fromEnv) ? path.resolve(fromEnv) : null
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue
    const candidate = path.join(dir, 'blender')
    if (isExecutableFile(candidate)) return candidate
  }
  return null
}

/**
 * Starts Blender running the MCP server script and resolves once it prints its listening line:
 * `{ port, framing, process, output(), waitForOutput(regex), exited, stop() }`.
 * `port` 0 (the default) picks a free port. Rejects (and kills Blender) if Blender exits first or
 * the line does not come within 60 s; the rejection carries Blender's output.
 */
export function startBlender({ framing = 'json', port = 0, blender = findBlender() } = {}) {
  if (!blender) return Promise.reject(new Error('blender not found (set BLENDER_BIN or install blender)'))
  const child = spawn(
    blender,
    ['-b', '--factory-startup', '--python', SERVER_SCRIPT, '--', '--port', String(port), '--framing', framing],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  running.add(child)

  // Both pipes are drained for Blender's whole life (a full pipe would block it); the last
  // lines are kept for diagnostics and for waitForOutput.
  const lines = []
  const watchers = new Set()
  const keep = (stream) => (line) => {
    lines.push(`${stream}: ${line}`)
    if (lines.length > KEPT_LINES) lines.shift()
    for (const watcher of watchers) watcher(line)
  }
  readline.createInterface({ input: child.stdout }).on('line', keep('stdout'))
  readline.createInterface({ input: child.stderr }).on('line', keep('stderr'))
  const output = () => lines.join('\n')

  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child)
      resolve({ code, signal })
    })
    child.on('error', (error) => {
      // Spawning failed (no 'exit' follows); a failed kill() of a live process is not this.
      if (child.pid !== undefined) return
      running.delete(child)
      resolve({ code: null, signal: null, error })
    })
  })

  /** Resolves with the first line (stdout or stderr) matching `regex` from now on. */
  function waitForOutput(regex, timeoutMs = START_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer)
        watchers.delete(watcher)
      }
      const watcher = (line) => {
        const match = regex.exec(line)
        if (match) {
          done()
          resolve(match)
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`Blender did not print ${regex} within ${timeoutMs} ms. Output:\n${output()}`))
      }, timeoutMs)
      watchers.add(watcher)
      exited.then(({ code, signal, error }) => {
        if (!watchers.has(watcher)) return
        done()
        const how = error ? `could not start (${error.message})` : `exited (code ${code}, signal ${signal})`
        reject(new Error(`Blender ${how} before printing ${regex}. Output:\n${output()}`))
      })
    })
  }

  async function stop() {
    if (child.exitCode !== null || child.signalCode !== null) return exited
    child.kill('SIGTERM')
    let timer
    const grace = new Promise((resolve) => {
      timer = setTimeout(resolve, STOP_GRACE_MS, 'timeout')
    })
    const outcome = await Promise.race([exited, grace])
    clearTimeout(timer)
    if (outcome === 'timeout') {
      child.kill('SIGKILL')
    }
    return exited
  }

  return waitForOutput(LISTENING, START_TIMEOUT_MS).then(
    (match) => ({
      port: Number(match[1]),
      framing: match[2],
      process: child,
      output,
      waitForOutput,
      exited,
      stop,
    }),
    async (err) => {
      if (child.pid !== undefined) child.kill('SIGKILL')
      await exited
      throw err
    },
  )
}

/** Kills Blender with SIGKILL (a crash, as far as its clients can tell) and waits for it to go. */
export async function killBlender(b) {
  if (b.process.exitCode === null && b.process.signalCode === null) b.process.kill('SIGKILL')
  return b.exited
}

/** Starts a fresh Blender on `port` (the script sets SO_REUSEADDR, so the port is free at once). */
export function restartOnSamePort(port, framing = 'json') {
  return startBlender({ port, framing })
}
