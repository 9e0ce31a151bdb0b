'use strict'
// The pools' metrics in a prom-client registry, without this package importing prom-client:
// each family becomes an object with prom-client's metric interface (`name`, `help`, `type`,
// `get()`), which the registry renders with the rest of the process's metrics.

/** Per registry: the pools registered with it, by name. */
const registered = new WeakMap()

/**
 * Adds `pool`'s metrics to `registry` (prom-client's default `register` when omitted, loaded
 * only then). Pools registered with one registry share its metric families, each sample
 * labelled with its pool's `name`; names must differ. A pool that is garbage-collected drops
 * out. Registering the same pool again is a no-op.
 */
function registerPoolMetrics(pool, registry) {
  if (typeof pool?.metricFamilies !== 'function') {
    const err = new TypeError('registerPoolMetrics: expected a ConnectionPool')
    err.code = 'ERR_INVALID_ARG_TYPE'
    throw err
  }
  // Resolved from the caller's project: prom-client is an optional peer dependency.
  registry ??= require('prom-client').register
  if (typeof registry?.registerMetric !== 'function') {
    const err = new TypeError('registerPoolMetrics: expected a prom-client Registry')
    err.code = 'ERR_INVALID_ARG_TYPE'
    throw err
  }
  let pools = registered.get(registry)
  if (pools === undefined) {
    pools = new Map()
    registered.set(registry, pools)
    for (const family of pool.metricFamilies()) registry.registerMetric(familyMetric(family, pools))
  }
  const name = pool.config.name
  const existing = pools.get(name)?.deref()
  if (existing !== undefined && existing !== pool) {
    throw new Error(
      `registerPoolMetrics: a pool named ${JSON.stringify(name)} is already registered with this registry; give each pool its own \`name\``,
    )
  }
  pools.set(name, new WeakRef(pool))
}

/** The prom-client metric for one family, over every live pool of `pools`. */
function familyMetric({ name, help, type }, pools) {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => {
      const values = []
      for (const [poolName, ref] of pools) {
        const pool = ref.deref()
        if (pool === undefined) {
          pools.delete(poolName)
          continue
        }
        const family = familiesOf(pool).find((f) => f.name === name)
        for (const s of family?.samples ?? []) values.push({ metricName: s.name, labels: s.labels, value: s.value })
      }
      return { name, help, type, aggregator: 'sum', values }
    },
    reset() {
      // Counters since the pool started cannot be reset from outside.
    },
  }
}

/** One snapshot per pool per turn: a registry asks every family in the same turn. */
const snapshots = new Map()
function familiesOf(pool) {
  let families = snapshots.get(pool)
  if (families === undefined) {
    if (snapshots.size === 0) queueMicrotask(() => snapshots.clear())
    families = pool.metricFamilies()
    snapshots.set(pool, families)
  }
  return families
}

module.exports = { registerPoolMetrics }
