// A pool the caller drops on the floor: its pending calls, and the connections it leased out,
// keep it alive until they are done; then it is collected and the process still exits.
import { describe, expect, it } from 'vitest'

import { mockBlender, runScript } from '../helpers.mjs'

const entry = new URL('../../index.mjs', import.meta.url).href

describe('garbage collection', () => {
  it('acquire() and execute() on pools collected before they answer still succeed (200 each)', async () => {
    const mock = await mockBlender()
    const run = await runScript(
      `import v8 from 'node:v8'
       import vm from 'node:vm'
       import { ConnectionPool } from ${JSON.stringify(entry)}
       v8.setFlagsFromString('--expose-gc')
       const gc = vm.runInNewContext('gc')
       const config = { host: '127.0.0.1', port: ${mock.port}, minConnections: 0 }
       const leases = Array.from({ length: 200 }, () => new ConnectionPool(config).acquire())
       const executes = Array.from({ length: 200 }, (_, i) => new ConnectionPool(config).execute('echo', { i }))
       gc()
       const outcomes = { leased: 0, leaseRan: 0, executed: 0, failures: [] }
       await Promise.all(leases.map(async (pending, i) => {
         try {
           const conn = await pending
           outcomes.leased++
           // The pool object is unreachable now; the held connection keeps it working.
           gc()
           const reply = await conn.execute('echo', { lease: i })
           if (reply.result.lease === i) outcomes.leaseRan++
           await conn.release()
         } catch (err) {
           outcomes.failures.push(err.code + ' ' + err.message)
         }
       }))
       for (const [i, pending] of executes.entries()) {
         try {
           if ((await pending).result.i === i) outcomes.executed++
         } catch (err) {
           outcomes.failures.push(err.code + ' ' + err.message)
         }
       }
       process.stdout.write(JSON.stringify(outcomes))
       // No shutdown(): the abandoned pools must not keep the process alive.`,
    )
    expect(run.code).toBe(0)
    const outcomes = JSON.parse(run.stdout)
    expect(outcomes.failures.slice(0, 3)).toEqual([])
    expect(outcomes).toMatchObject({ leased: 200, leaseRan: 200, executed: 200 })
    expect(mock.requestLog).toHaveLength(400)
  })
})
