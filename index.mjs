// ESM entry: the same objects as the CommonJS entry (one module instance, one default pool).
import cjs from './index.js'

export const {
  ConnectionPool,
  PooledConnection,
  BlenderPoolError,
  AbortError,
  MutexTimeoutError,
  getConnectionPool,
  configureConnectionPool,
  registerPoolMetrics,
  mcpCallOptions,
} = cjs
