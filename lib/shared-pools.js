'use strict'
// The shared pools of this JS context (main thread or worker): getConnectionPool()'s, and the
// options of those the socket client opens for other addresses, set once.

const { SHARED_DEFAULTS, checkConfig } = require('./options.js')
const { ConnectionPool } = require('./pool.js')

let defaultPool = null
/** The options of the shared pools, set once by configureConnectionPool() or on first use. */
let sharedConfig = null

/** The pool of this JS context (main thread or worker), configured from the environment. */
function getConnectionPool() {
  if (defaultPool === null) configureConnectionPool()
  return defaultPool
}

/**
 * Configures the shared pools once, before their first use, and returns getConnectionPool()'s
 * pool (created here, so a bad option throws here). Throws ERR_POOL_ALREADY_CONFIGURED after
 * a first getConnectionPool(), socket-client call or configureConnectionPool().
 */
function configureConnectionPool(config) {
  if (sharedConfig !== null) {
    const err = new Error(
      'configureConnectionPool: the shared pool is already configured or in use; ' +
        'call it once, before the first getConnectionPool() or socket-client call',
    )
    err.code = 'ERR_POOL_ALREADY_CONFIGURED'
    throw err
  }
  // The options given, checked: one set to undefined is not given, and keeps the shared default.
  const options = { ...SHARED_DEFAULTS, ...checkConfig(config) }
  defaultPool = new ConnectionPool(options)
  sharedConfig = Object.freeze(options)
  return defaultPool
}

/**
 * For the socket client: getConnectionPool()'s pool if it exists yet (else null), and the
 * options of the shared pools (their defaults until configured).
 */
function sharedPools() {
  return { defaultPool, config: sharedConfig ?? SHARED_DEFAULTS }
}

module.exports = { getConnectionPool, configureConnectionPool, sharedPools }
