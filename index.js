'use strict'
// blender-mcp-pool: the list of exports. Each concern has its file in lib/ (see
// CONTRIBUTING.md, "Layout"); the sockets, framing, queueing and timeouts are in Rust.

const { AbortError, BlenderPoolError, MutexTimeoutError } = require('./lib/errors.js')
const { PooledConnection } = require('./lib/pooled-connection.js')
const { mcpCallOptions } = require('./lib/mcp.js')
const { ConnectionPool } = require('./lib/pool.js')
const { registerPoolMetrics } = require('./lib/prom-client.js')
const { configureConnectionPool, getConnectionPool } = require('./lib/shared-pools.js')

module.exports = {
  registerPoolMetrics,
  ConnectionPool,
  PooledConnection,
  BlenderPoolError,
  AbortError,
  MutexTimeoutError,
  getConnectionPool,
  configureConnectionPool,
  mcpCallOptions,
}
