// Types of the ESM entry (index.mjs): the same exports as the CommonJS entry.
export * from './index.js'
