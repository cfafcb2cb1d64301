import { join } from 'node:path'
import { EXIT } from '@sync-agent/shared'
import { parse, usage } from './cli-args.js'

/*
 * The commands that need the engine (the Hypercore stack, the config schema, the migration):
 * only the full bundle (dist/bundle/main.cjs) has them. bin/sync-agent.js loads that one for
 * `start` and `migrate`; every other command runs from dist/bundle/cli.cjs, a tenth of its
 * size (scripts/bundle.mjs), so `status`, `wait-ready` and the other control commands a script
 * or a monitoring job runs every few seconds cost about half the CPU.
 */

export async function startCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { config: { type: 'string', short: 'c' } })
  if (positionals.length > 0) throw usage(`start: unexpected argument ${JSON.stringify(positionals[0])}`)
  // imported here: a bundled module's top level runs when first imported, and the blind relay
  // or the agent is only evaluated for the secret that runs it
  const { loadConfig } = await import('../config/load-config.js')
  const heapGrowth = new (await import('../heap-growth.js')).HeapGrowthTuner()
  heapGrowth.ready()
  const { createLogger } = await import('../log.js')
  const config = loadConfig({ configFile: values.config as string | undefined, env: process.env, cwd: process.cwd() })
  const log = createLogger(config.logLevel)
  // what an earlier run's watchdog left, taken before this run's could write it again
  const { takePreviousStall, STALL_FILE } = await import('../previous-stall.js')
  const previousStall = await takePreviousStall(config.dataDir).catch((err: unknown) => {
    log.warn({ err }, 'could not read what the watchdog of an earlier run left')
    return null
  })
  // from before the start: a start can hang too
  const watchdog =
    config.watchdogS > 0
      ? new (await import('../event-loop-watchdog.js')).EventLoopWatchdog({ stallMs: config.watchdogS * 1000, log: log.child({ c: 'watchdog' }), stallFile: join(config.dataDir, STALL_FILE) })
      : null
  watchdog?.ready()
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
    await watchdog?.close()
    heapGrowth.close()
    log.flush()
    throw err
  }
  if (previousStall) {
    if ('recordPreviousStall' in agent) agent.recordPreviousStall(previousStall)
    else log.warn({ code: 'E_LOOP_STALLED', ...previousStall }, 'the previous run ended itself: its event loop had stalled')
  }
  const code = await stopped
  // after the stop, which can hang as well
  await watchdog?.close()
  heapGrowth.close()
  log.flush()
  return code
}

export async function migrateCommand(args: string[]): Promise<number> {
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
