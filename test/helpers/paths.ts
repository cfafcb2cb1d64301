import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

/** Absolute path of the workspace root (the folder holding pnpm-workspace.yaml). */
export const repoRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/** `require` of the agent's own dependencies (hyperdrive, corestore, …), which the workspace root does not list. */
export const requireFromAgent: NodeJS.Require = createRequire(path.join(repoRoot, 'packages/sync-agent/package.json'))

/**
 * The CLI entry point; it imports the compiled engine from dist/, so run `pnpm build` first.
 * SYNC_AGENT_IT_BIN points the suite at another build of the CLI.
 */
export const binPath: string = process.env.SYNC_AGENT_IT_BIN ?? path.join(repoRoot, 'packages', 'sync-agent', 'bin', 'sync-agent.js')
