// A host name that resolves to an unreachable IPv6 address first and to the add-on's IPv4
// address second (as `localhost` does on Windows: ::1 first, the add-on on 127.0.0.1 only):
// the pool tries the second address after 250 ms instead of waiting for the first to fail.
// Run in a network and mount namespace of its own (root, `unshare -nm`): loopback up with
// 2001:db8::1/64, and a hosts file over /etc/hosts naming `dual.test` 2001:db8::2, 127.0.0.1.
// A connect to 2001:db8::2 there fails only after about a second (ENETUNREACH). Skipped, with
// the reason printed, where such namespaces cannot be made.

import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { runScript } from '../helpers.mjs'

const SETUP =
  'ip link set lo up && ip -6 addr add 2001:db8::1/64 dev lo nodad && mount --bind "$0" /etc/hosts && exec "$@"'

function namespacesUnavailable() {
  if (process.platform !== 'linux') return 'network namespaces are Linux-only'
  const probe = spawnSync(
    'unshare',
    ['-nm', 'sh', '-c', 'ip link set lo up && ip -6 addr add 2001:db8::1/64 dev lo nodad'],
    { encoding: 'utf8' },
  )
  if (probe.error) return `unshare not runnable: ${probe.error.message}`
  if (probe.status !== 0)
    return `cannot make a network namespace here: ${probe.stderr.trim() || `exit ${probe.status}`}`
  return null
}

const skipReason = namespacesUnavailable()
if (skipReason) console.warn(`skipping the dual-stack connect test: ${skipReason}`)

describe.skipIf(skipReason)('a name whose first address fails slowly', () => {
  it('is reached on its second address before the first attempt fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blender-mcp-pool-dual-'))
    const hosts = join(dir, 'hosts')
    writeFileSync(hosts, '2001:db8::2 dual.test\n127.0.0.1 dual.test\n')
    try {
      // In the namespace: the mock on 127.0.0.1; a plain connect to [2001:db8::2] started with
      // the pool's call, to see when the first address fails; the pool's reply must come first.
      const script = `
        import net from 'node:net'
        import { lookup } from 'node:dns/promises'
        import { startMockBlender } from ${JSON.stringify(new URL('../../mock/blender-mock.mjs', import.meta.url).href)}
        import { ConnectionPool } from ${JSON.stringify(new URL('../../index.mjs', import.meta.url).href)}
        const mock = await startMockBlender()
        const order = (await lookup('dual.test', { all: true, order: 'verbatim' })).map((a) => a.address)
        const events = []
        const direct = new Promise((resolve) => {
          const s = net.connect({ host: '2001:db8::2', port: mock.port, autoSelectFamily: false })
          s.once('connect', () => { events.push('direct connected'); s.destroy(); resolve('connected') })
          s.once('error', (e) => { events.push('direct failed'); resolve(e.code) })
        })
        const pool = new ConnectionPool({ host: 'dual.test', port: mock.port, minConnections: 0 })
        const reply = await pool.execute('echo', { via: 'dual.test' })
        events.push('pool replied')
        const directOutcome = await direct
        const stats = pool.getStats()
        await pool.shutdown()
        await mock.stop()
        process.stdout.write(JSON.stringify({ order, reply, events, directOutcome, connectFailures: stats.connectFailures, served: mock.requests }))`
      const run = await runScript(
        script,
        { LOG_LEVEL: 'silent' },
        { prefix: ['unshare', '-nm', 'sh', '-c', SETUP, hosts] },
      )
      expect(run.code, run.stderr).toBe(0)
      const seen = JSON.parse(run.stdout)
      // The set-up is as described: the unreachable address first, and it does fail.
      expect(seen.order).toEqual(['2001:db8::2', '127.0.0.1'])
      expect(['ENETUNREACH', 'EHOSTUNREACH', 'ETIMEDOUT']).toContain(seen.directOutcome)
      // The pool's call went to 127.0.0.1 while the connect to 2001:db8::2 was still pending.
      expect(seen.reply).toEqual({ status: 'success', result: { via: 'dual.test' } })
      expect(seen.events).toEqual(['pool replied', 'direct failed'])
      expect(seen.connectFailures).toBe(0)
      expect(seen.served).toBe(1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
