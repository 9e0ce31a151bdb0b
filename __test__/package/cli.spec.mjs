// The CLI (bin/blender-mcp-pool.mjs), run as a child process against servers in this process.
// Children are spawned asynchronously: the servers answer from this process's event loop.

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

import { deadEndpoint, mockBlender } from '../helpers.mjs'

const CLI = fileURLToPath(new URL('../../bin/blender-mcp-pool.mjs', import.meta.url))
const VERSION = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version

/** Runs the CLI; resolves { code, stdout, stderr } once it has exited. */
function cli(args, env = {}) {
  const childEnv = { ...process.env, ...env }
  for (const name of ['BLENDER_HOST', 'BLENDER_PORT', 'SOCKET_TIMEOUT']) if (!(name in env)) delete childEnv[name]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d
    })
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

const servers = []
afterEach(async () => {
  while (servers.length > 0) await servers.pop()()
})

/** A raw TCP server on 127.0.0.1 running `onConnection(socket)`; closed after the test. */
async function rawServer(onConnection) {
  const sockets = new Set()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    onConnection(socket)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  servers.push(() => {
    for (const s of sockets) s.destroy()
    return new Promise((resolve) => server.close(resolve))
  })
  return { host: '127.0.0.1', port: server.address().port }
}

/** A length-prefixed add-on stand-in (4-byte big-endian length + JSON, both ways). */
function lengthPrefixedServer() {
  return rawServer((socket) => {
    let buf = Buffer.alloc(0)
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const req = JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString('utf8'))
        buf = buf.subarray(4 + buf.readUInt32BE(0))
        const body = Buffer.from(JSON.stringify({ status: 'success', result: { type: req.type, objects: [] } }))
        const head = Buffer.alloc(4)
        head.writeUInt32BE(body.length)
        socket.write(Buffer.concat([head, body]))
      }
    })
  })
}

const at = (server) => ['--host', '127.0.0.1', '--port', String(server.port)]

describe('blender-mcp-pool ping', () => {
  it('prints "ok <host>:<port> <ms> ms" and exits 0', async () => {
    const mock = await mockBlender()
    const { code, stdout, stderr } = await cli(['ping', ...at(mock)])
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    expect(stdout).toMatch(new RegExp(`^ok 127\\.0\\.0\\.1:${mock.port} \\d+(\\.\\d+)? ms\\n$`))
    expect(mock.requestLog.map((r) => r.type)).toEqual(['get_scene_info'])
  })

  it('--json prints one JSON object; BLENDER_PORT is the default port', async () => {
    const mock = await mockBlender()
    const { code, stdout } = await cli(['ping', '--json', '--host', '127.0.0.1'], { BLENDER_PORT: String(mock.port) })
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, host: '127.0.0.1', port: mock.port, framing: 'json' })
  })

  it('nothing listening: exit 4, the advice on stderr, nothing on stdout', async () => {
    const dead = await deadEndpoint()
    const { code, stdout, stderr } = await cli(['ping', '--host', dead.host, '--port', String(dead.port)])
    expect(code).toBe(4)
    expect(stdout).toBe('')
    expect(stderr).toMatch(/connection refused/)
    expect(stderr).toMatch(/MCP add-on/)
  })
})

describe('blender-mcp-pool exec', () => {
  it('prints the reply JSON exactly', async () => {
    const mock = await mockBlender()
    const params = { a: 1, s: 'é "quoted"', list: [1, 2, { deep: null }] }
    const { code, stdout, stderr } = await cli(['exec', 'echo', JSON.stringify(params), ...at(mock)])
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    expect(stdout.endsWith('\n')).toBe(true)
    expect(JSON.parse(stdout)).toEqual({ status: 'success', result: params })
    expect(mock.requestLog).toEqual([{ connectionId: expect.any(Number), type: 'echo', params }])
  })

  it('--pretty indents the same reply; without params nothing is sent as params', async () => {
    const mock = await mockBlender()
    const { code, stdout } = await cli(['exec', 'get_scene_info', '--pretty', ...at(mock)])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^{\n {2}"status": "success",\n/)
    expect(JSON.parse(stdout).result.objects).toEqual(['Cube', 'Camera', 'Light'])
    expect(mock.requestLog[0].params).toBeUndefined()
  })

  it.each([
    ['invalid JSON', '{"a":', /not valid JSON/],
    ['an array', '[1,2]', /must be a JSON object/],
    ['null', 'null', /must be a JSON object/],
  ])('params that are %s: exit 2, message on stderr, nothing on stdout, nothing sent', async (_, params, message) => {
    const mock = await mockBlender()
    const { code, stdout, stderr } = await cli(['exec', 'echo', params, ...at(mock)])
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expect(stderr).toMatch(message)
    expect(mock.connectionsOpened).toBe(0)
  })

  it("a reply with status 'error' exits 1 with the message on stderr", async () => {
    const mock = await mockBlender()
    const { code, stdout, stderr } = await cli(['exec', 'fail', '{"message":"Object not found: Ghost"}', ...at(mock)])
    expect(code).toBe(1)
    expect(JSON.parse(stdout)).toEqual({ status: 'error', message: 'Object not found: Ghost' })
    expect(stderr).toMatch(/Object not found: Ghost/)
    const unknown = await cli(['exec', 'no_such_command', ...at(mock)])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/Unknown command type: no_such_command/)
  })

  it('an invalid reply exits 6 (protocol problem)', async () => {
    const mock = await mockBlender()
    mock.setFault('garbage')
    const { code, stdout, stderr } = await cli(['exec', 'get_scene_info', ...at(mock)])
    expect(code).toBe(6)
    expect(stdout).toBe('')
    expect(stderr).toMatch(/Invalid response/)
  })
})

describe('blender-mcp-pool doctor', () => {
  it('against the mock: detects json, every check ok, exit 0 (--json)', async () => {
    const mock = await mockBlender()
    const { code, stdout, stderr } = await cli(['doctor', '--json', ...at(mock)])
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    const report = JSON.parse(stdout)
    expect(report).toMatchObject({ ok: true, exitCode: 0, framing: 'json', port: mock.port })
    expect(report.checks.map((c) => [c.name, c.status])).toEqual([
      ['resolve', 'ok'],
      ['connect', 'ok'],
      ['framing', 'ok'],
      ['latency', 'ok'],
    ])
    expect(report.latency.count).toBe(5)
    expect(report.latency.min).toBeLessThanOrEqual(report.latency.median)
    expect(report.latency.median).toBeLessThanOrEqual(report.latency.max)
  })

  it('prints one "ok" line per check when not a TTY; --count sets the pings; resolves localhost', async () => {
    const mock = await mockBlender()
    const { code, stdout } = await cli(['doctor', '--host', 'localhost', '--port', String(mock.port), '--count', '3'])
    expect(code).toBe(0)
    const lines = stdout.trimEnd().split('\n')
    expect(lines.map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual([
      'ok resolve:',
      'ok connect:',
      'ok framing:',
      'ok latency:',
    ])
    expect(lines[2]).toMatch(/framing: json/)
    expect(lines[3]).toMatch(/over 3 round trips/)
  })

  it('a closed port: exit 4, the advice mentions the add-on', async () => {
    const dead = await deadEndpoint()
    const { code, stdout } = await cli(['doctor', '--host', dead.host, '--port', String(dead.port)])
    expect(code).toBe(4)
    expect(stdout).toMatch(/^FAIL connect: /m)
    expect(stdout).toMatch(/nothing listens on .*is Blender running with the MCP add-on started/)
    const json = JSON.parse((await cli(['doctor', '--json', '--host', dead.host, '--port', String(dead.port)])).stdout)
    expect(json).toMatchObject({ ok: false, exitCode: 4, framing: null })
    expect(json.checks.at(-1)).toMatchObject({
      name: 'connect',
      status: 'fail',
      advice: expect.stringMatching(/add-on/),
    })
  })

  it('accepts but never replies: exit 5, says Blender runs one command at a time', async () => {
    const mock = await mockBlender()
    await mock.setAcceptMode('never-read')
    const { code, stdout } = await cli(['doctor', '--timeout', '300', ...at(mock)])
    expect(code).toBe(5)
    expect(stdout).toMatch(/^ok {3}connect: /m)
    expect(stdout).toMatch(/^FAIL framing: /m)
    expect(stdout).toMatch(/accepts connections but does not answer: Blender runs one command at a time/)
  })

  it('a length-prefixed server: detects length-prefixed, then pings with it', async () => {
    const server = await lengthPrefixedServer()
    const { code, stdout } = await cli(['doctor', '--json', '--timeout', '1000', ...at(server)])
    expect(code).toBe(0)
    const report = JSON.parse(stdout)
    expect(report).toMatchObject({ ok: true, framing: 'length-prefixed' })
    expect(report.checks.every((c) => c.status === 'ok')).toBe(true)
    expect(report.latency.count).toBe(5)
  })

  it('a median round trip over 1 s is a warning, not a failure', async () => {
    const slow = (ms) => new Promise((resolve) => setTimeout(() => resolve({ name: 'Scene' }), ms))
    const mock = await mockBlender({ handlers: { get_scene_info: () => slow(1100) } })
    const { code, stdout } = await cli(['doctor', '--count', '1', ...at(mock)])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^WARN latency: .* over 1 round trips$/m)
    expect(stdout).toMatch(/Blender is slow to answer: busy main thread\?/)
  })

  it('--framing that the server does not speak: exit 6 and says which it speaks', async () => {
    const mock = await mockBlender()
    const { code, stdout } = await cli(['doctor', '--framing', 'length-prefixed', '--timeout', '300', ...at(mock)])
    expect(code).toBe(6)
    expect(stdout).toMatch(/the server speaks json, not length-prefixed/)
  })

  it('a server that answers garbage: unknown framing, exit 6', async () => {
    const server = await rawServer((socket) =>
      socket.once('data', () => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n')),
    )
    const { code, stdout } = await cli(['doctor', '--json', '--timeout', '500', ...at(server)])
    expect(code).toBe(6)
    const report = JSON.parse(stdout)
    expect(report.framing).toBe(null)
    expect(report.checks.at(-1)).toMatchObject({
      name: 'framing',
      status: 'fail',
      detail: expect.stringMatching(/^unknown/),
    })
  })
})

describe('usage', () => {
  it('--help lists the commands and exit codes; --version prints the package version', async () => {
    const help = await cli(['--help'])
    expect(help.code).toBe(0)
    for (const word of ['ping', 'exec', 'doctor', '--framing', 'Exit codes']) expect(help.stdout).toContain(word)
    expect(await cli(['--version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' })
  })

  it.each([
    [[]],
    [['bogus']],
    [['ping', '--port', '0']],
    [['ping', '--nope']],
    [['exec']],
    [['ping', '--framing', 'xml']],
    [['doctor', '--timeout', 'soon']],
    [['ping', 'extra']],
  ])('%j: exit 2, nothing on stdout', async (args) => {
    const { code, stdout, stderr } = await cli(args)
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expect(stderr).toMatch(/^blender-mcp-pool: /)
  })

  it('a bad BLENDER_PORT is a usage error naming it', async () => {
    const { code, stderr } = await cli(['ping'], { BLENDER_PORT: 'abc' })
    expect(code).toBe(2)
    expect(stderr).toMatch(/BLENDER_PORT/)
  })
})
