// Types of the ESM entry (socket-client.mjs): the same exports as the CommonJS entry.
export * from './socket-client.js'
