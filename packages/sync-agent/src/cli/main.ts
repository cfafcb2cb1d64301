import { readFileSync } from 'node:fs'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { join } from 'node:path'
import { deriveEncrypted, deriveReadOnly, EXIT, formatSecret, isSyncError, newSecret, parseSecret, SyncError } from '@sync-agent/shared'
import { acceptDeletes, getStatus, listVersions, rescan, restoreVersion, revert, setPaused } from '../control/control-client.js'
import { formatStatus } from './format-status.js'
import { formatRestore, formatVersions } from './format-versions.js'

const USAGE = `usage: sync-agent <command> [options]

commands:
  secret new                    print a new read-write folder secret
  secret readonly <secret>      print the read-only secret of a read-write one
  secret encrypted <secret>     print the encrypted (blind) secret of a rw or ro one
  start [--config FILE]         run the agent in the foreground (SIGINT/SIGTERM stop it)
  status [--json] [--watch] [--interval S] [--control PATH]
                                show the running agent's state (--watch: live view)
  wait-ready [--timeout S] [--control PATH]
                                wait until the agent is ready (exit 0), or time out (exit 1)
  migrate --from-btsync sync.conf [--out FILE] [--data DIR] [--force]
                                write a config from a BitTorrent Sync / Resilio sync.conf
  accept-deletes [--control PATH]
                                apply a mass delete the agent is holding
  revert [--control PATH]       read-only peer: undo local changes (restore the shared state)
  rescan [--json] [--control PATH]
                                walk the folder now for changes the watcher missed (a script's
                                bulk change, a mount): they are published as usual
  pause [--control PATH]        hold the sync (say, during a plugin update): nothing is applied
                                or published until resume (files pages ask for still are);
                                kept across restarts
  resume [--control PATH]       let the sync go on; what changed meanwhile follows
  versions [PATH] [--json] [--control PATH]
                                list the versions kept (versionsDir) of a file, or of the files
                                under a directory (folder-relative or absolute; all without PATH)
  versions restore PATH [--version V] [--control PATH]
                                put a kept version of a file back (the newest, or V: its stamp
                                or name); the file it replaces is kept as a version
  version                       print the version (also --version, -V)

configuration: a JSON or YAML file and/or SYNC_AGENT_* env vars (see README)`

function usage(message: string): SyncError {
  return new SyncError('E_USAGE', `${message}\n${USAGE}`)
}

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true })
    return { values: values as Record<string, string | boolean | undefined>, positionals }
  } catch (err) {
    throw usage((err as Error).message)
  }
}

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

async function startCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { config: { type: 'string', short: 'c' } })
  if (positionals.length > 0) throw usage(`start: unexpected argument ${JSON.stringify(positionals[0])}`)
  // loaded here, not at the top: `status` and `secret` stay fast without the Hypercore stack
  const { loadConfig } = await import('../config/load-config.js')
  const heapGrowth = new (await import('../heap-growth.js')).HeapGrowthTuner()
  heapGrowth.ready()
  const { createLogger } = await import('../log.js')
  const config = loadConfig({ configFile: values.config as string | undefined, env: process.env, cwd: process.cwd() })
  const log = createLogger(config.logLevel)
  // an encrypted (blind) secret runs a relay that stores and forwards without reading
  const agent = config.secret.kind === 'en' ? new (await import('../blind-daemon.js')).BlindAgent(config, log) : new (await import('../daemon.js')).Agent(config, log)
  let stopping = false
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return
      stopping = true
      log.info({ signal }, 'stopping')
      agent.close().then(
        () => resolve(EXIT.ok),
        (err: unknown) => {
          log.error({ err }, 'stop failed')
          resolve(EXIT.failure)
        }
      )
    }
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGTERM', () => stop('SIGTERM'))
  })
  try {
    await agent.ready()
  } catch (err) {
    await agent.close()
    heapGrowth.close()
    log.flush()
    throw err
  }
  const code = await stopped
  heapGrowth.close()
  log.flush()
  return code
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
  const { watchStatus } = await import('./watch-status.js')
  return watchStatus(socketPath, { intervalMs: intervalS * 1000, json: values.json === true, tty: process.stdout.isTTY === true })
}

async function waitReadyCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { timeout: { type: 'string' }, control: { type: 'string' } })
  if (positionals.length > 0) throw usage(`wait-ready: unexpected argument ${JSON.stringify(positionals[0])}`)
  const socketPath = controlSocket('wait-ready', values.control as string | undefined)
  const timeoutS = seconds('wait-ready', 'timeout', values.timeout as string | undefined, 300)
  const { waitReady } = await import('./wait-ready.js')
  return waitReady(socketPath, timeoutS * 1000)
}

async function migrateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    'from-btsync': { type: 'string' },
    out: { type: 'string', short: 'o' },
    data: { type: 'string' },
    force: { type: 'boolean' }
  })
  if (positionals.length > 0) throw usage(`migrate: unexpected argument ${JSON.stringify(positionals[0])}`)
  const from = values['from-btsync'] as string | undefined
  if (!from) throw usage('migrate: give --from-btsync PATH (the BitTorrent Sync / Resilio sync.conf)')
  const { runMigration } = await import('../migrate/run-migration.js')
  const result = runMigration({
    from,
    out: values.out as string | undefined,
    dataDir: values.data as string | undefined,
    force: values.force === true,
    cwd: process.cwd()
  })
  if (result.stdoutConfig !== null) {
    // the config is the output; what was mapped goes beside it
    process.stdout.write(result.stdoutConfig)
    process.stderr.write(result.report)
  } else {
    process.stdout.write(result.report)
  }
  return EXIT.ok
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
      case 'start':
        return await startCommand(rest)
      case 'status':
        return await statusCommand(rest)
      case 'migrate':
        return await migrateCommand(rest)
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
