import { parseArgs, type ParseArgsConfig } from 'node:util'
import { SyncError } from '@sync-agent/shared'

/** The CLI's usage text and strict argument parsing, shared by every command (a bad argument is E_USAGE, exit 2). */
export const USAGE = `usage: sync-agent <command> [options]

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

export function usage(message: string): SyncError {
  return new SyncError('E_USAGE', `${message}\n${USAGE}`)
}

export function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true })
    return { values: values as Record<string, string | boolean | undefined>, positionals }
  } catch (err) {
    throw usage((err as Error).message)
  }
}
