import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { deriveEncrypted, deriveReadOnly, EXIT, formatSecret, isSyncError, newSecret, parseSecret, SyncError } from '@sync-agent/shared'
import { acceptDeletes, getStatus, listVersions, rescan, restoreVersion, revert, setPaused } from '../control/control-client.js'
import { formatStatus } from './format-status.js'
import { formatRestore, formatVersions } from './format-versions.js'
import { parse, usage, USAGE } from './cli-args.js'
import { waitReady } from './wait-ready.js'
import { watchStatus } from './watch-status.js'

async function secretCommand(args: string[]): Promise<number> {
  const [sub, value, ...rest] = args
  if (rest.length > 0) throw usage(`unexpected argument ${JSON.stringify(rest[0])}`)
  if (sub === 'new' && value === undefined) {
    process.stdout.write(newSecret() + '\n')
    return EXIT.ok
  }
  if ((sub === 'readonly' || sub === 'encrypted') && value !== undefined) {
    const parsed = parseSecret(value)
    process.stdout.write(formatSecret(sub === 'readonly' ? deriveReadOnly(parsed) : deriveEncrypted(parsed)) + '\n')
    return EXIT.ok
  }
  throw usage('secret: expected "secret new", "secret readonly <secret>" or "secret encrypted <secret>"')
}

function controlSocket(command: string, given: string | undefined): string {
  const env = process.env
  const socketPath = given ?? env.SYNC_AGENT_CONTROL ?? (env.SYNC_AGENT_DATA ? join(env.SYNC_AGENT_DATA, 'control.sock') : null)
  if (!socketPath) throw usage(`${command}: give --control PATH (or set SYNC_AGENT_CONTROL or SYNC_AGENT_DATA)`)
  return socketPath
}

async function acceptDeletesCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { control: { type: 'string' } })
  if (positionals.length > 0) throw usage(`accept-deletes: unexpected argument ${JSON.stringify(positionals[0])}`)
  const { accepted } = await acceptDeletes(controlSocket('accept-deletes', values.control as string | undefined))
  process.stdout.write(accepted > 0 ? `applying ${accepted} held deletes\n` : 'no deletes were held\n')
  return EXIT.ok
}

async function pauseCommand(command: 'pause' | 'resume', args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { control: { type: 'string' } })
  if (positionals.length > 0) throw usage(`${command}: unexpected argument ${JSON.stringify(positionals[0])}`)
  const { pausedSince } = await setPaused(controlSocket(command, values.control as string | undefined), command === 'pause')
  process.stdout.write(
    pausedSince !== null
      ? `paused since ${new Date(pausedSince).toISOString()}: nothing is applied or published until \`sync-agent resume\`\n`
      : 'running: changes are applied and published\n'
  )
  return EXIT.ok
}

async function revertCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { control: { type: 'string' } })
  if (positionals.length > 0) throw usage(`revert: unexpected argument ${JSON.stringify(positionals[0])}`)
  const { reverting } = await revert(controlSocket('revert', values.control as string | undefined))
  process.stdout.write(reverting > 0 ? `restoring the shared state of ${reverting} paths\n` : 'no local changes to revert\n')
  return EXIT.ok
}

async function rescanCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, control: { type: 'string' } })
  if (positionals.length > 0) throw usage(`rescan: unexpected argument ${JSON.stringify(positionals[0])}`)
  const r = await rescan(controlSocket('rescan', values.control as string | undefined))
  const found = r.changed + r.gone === 0 ? 'nothing changed' : `${r.changed} changed, ${r.gone} gone: being published`
  process.stdout.write((values.json ? JSON.stringify(r) : `rescanned ${r.entries} entries in ${r.durationMs} ms: ${found}`) + '\n')
  return EXIT.ok
}

/** A path a user typed that the agent found unsafe is a usage error (exit 2), like any bad argument. */
function asUsage<T>(run: Promise<T>): Promise<T> {
  return run.catch((err: unknown) => {
    throw isSyncError(err, 'E_PATH_UNSAFE') ? new SyncError('E_USAGE', err.message) : err
  })
}

async function versionsCommand(args: string[]): Promise<number> {
  if (args[0] === 'restore') {
    const { values, positionals } = parse(args.slice(1), { version: { type: 'string' }, control: { type: 'string' } })
    if (positionals.length !== 1) throw usage(positionals.length === 0 ? 'versions restore: give the PATH of the file to restore' : `versions restore: unexpected argument ${JSON.stringify(positionals[1])}`)
    const version = values.version as string | undefined
    const result = await asUsage(restoreVersion(controlSocket('versions', values.control as string | undefined), { path: positionals[0] as string, ...(version === undefined ? {} : { version }) }))
    process.stdout.write(formatRestore(result) + '\n')
    return EXIT.ok
  }
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, control: { type: 'string' } })
  if (positionals.length > 1) throw usage(`versions: unexpected argument ${JSON.stringify(positionals[1])}`)
  const listing = await asUsage(listVersions(controlSocket('versions', values.control as string | undefined), positionals[0] ?? ''))
  process.stdout.write((values.json ? JSON.stringify(listing) : formatVersions(listing, positionals[0] ?? '')) + '\n')
  return listing.dir === null ? EXIT.failure : EXIT.ok
}

/** A positive number of seconds from an option, or a usage error naming it. */
function seconds(command: string, option: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(n) || n <= 0) throw usage(`${command}: --${option} must be a positive number of seconds, got ${JSON.stringify(value)}`)
  return n
}

async function statusCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, watch: { type: 'boolean' }, interval: { type: 'string' }, control: { type: 'string' } })
  if (positionals.length > 0) throw usage(`status: unexpected argument ${JSON.stringify(positionals[0])}`)
  const socketPath = controlSocket('status', values.control as string | undefined)
  const intervalS = seconds('status', 'interval', values.interval as string | undefined, 1)
  if (!values.watch) {
    const report = await getStatus(socketPath)
    process.stdout.write((values.json ? JSON.stringify(report) : formatStatus(report, { bars: process.stdout.isTTY === true })) + '\n')
    return EXIT.ok
  }
  return watchStatus(socketPath, { intervalMs: intervalS * 1000, json: values.json === true, tty: process.stdout.isTTY === true })
}

async function waitReadyCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { timeout: { type: 'string' }, control: { type: 'string' } })
  if (positionals.length > 0) throw usage(`wait-ready: unexpected argument ${JSON.stringify(positionals[0])}`)
  const socketPath = controlSocket('wait-ready', values.control as string | undefined)
  const timeoutS = seconds('wait-ready', 'timeout', values.timeout as string | undefined, 300)
  return waitReady(socketPath, timeoutS * 1000)
}

/**
 * This package's version, from its package.json: two levels above this module both as
 * compiled (dist/cli/) and as bundled (dist/bundle/).
 */
export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name?: unknown; version?: unknown }
  if (manifest.name !== 'sync-agent' || typeof manifest.version !== 'string') throw new Error('sync-agent: its package.json was not found beside it')
  return manifest.version
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'secret':
        return await secretCommand(rest)
      // start and migrate need the engine: only the full bundle has agent-commands.js, and
      // bin/sync-agent.js loads that one for them (every other command runs from cli.cjs)
      case 'start':
        return await (await import('./agent-commands.js')).startCommand(rest)
      case 'status':
        return await statusCommand(rest)
      case 'migrate':
        return await (await import('./agent-commands.js')).migrateCommand(rest)
      case 'wait-ready':
        return await waitReadyCommand(rest)
      case 'accept-deletes':
        return await acceptDeletesCommand(rest)
      case 'revert':
        return await revertCommand(rest)
      case 'pause':
      case 'resume':
        return await pauseCommand(command, rest)
      case 'versions':
        return await versionsCommand(rest)
      case 'rescan':
        return await rescanCommand(rest)
      case 'version':
      case '--version':
      case '-V':
        if (rest.length > 0) throw usage(`${command}: unexpected argument ${JSON.stringify(rest[0])}`)
        process.stdout.write(`sync-agent ${packageVersion()}\n`)
        return EXIT.ok
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n')
        return command === undefined ? EXIT.usage : EXIT.ok
      default:
        throw usage(`unknown command ${JSON.stringify(command)}`)
    }
  } catch (err) {
    if (isSyncError(err)) {
      process.stderr.write(`sync-agent: ${err.message}\n`)
      if (err.code === 'E_USAGE' || err.code === 'E_CONFIG' || err.code === 'E_SECRET') return EXIT.usage
      return EXIT.failure
    }
    process.stderr.write(`sync-agent: unexpected error: ${(err as Error).stack ?? String(err)}\n`)
    return EXIT.failure
  }
}
