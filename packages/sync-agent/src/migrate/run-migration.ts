import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { basename, dirname, extname, join, resolve } from 'node:path'
import { stringify as stringifyYaml } from 'yaml'
import { SyncError } from '@sync-agent/shared'
import { parseJsonWithComments } from './json-with-comments.js'
import { readBtsyncConf } from './btsync-conf.js'
import { IGNORE_LIST_PATH, planMigration, type FolderPlan, type IgnoreListRead, type MigrationPlan } from './plan-migration.js'

/**
 * `sync-agent migrate --from-btsync sync.conf [--out FILE]`: reads the file, plans, writes one
 * config per folder (never over an existing file unless forced) and says what it did.
 */
export interface MigrateOptions {
  from: string
  /** where to write; absent: the (single) config goes to stdout */
  out?: string
  dataDir?: string
  force?: boolean
  cwd: string
}

export interface MigrateResult {
  plan: MigrationPlan
  /** files written, in folder order */
  written: string[]
  /** the config text when no --out was given */
  stdoutConfig: string | null
  report: string
}

function readIgnoreList(folder: string): IgnoreListRead {
  try {
    return { text: readFileSync(join(folder, IGNORE_LIST_PATH), 'utf8') }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error'
    return code === 'ENOENT' || code === 'ENOTDIR' ? { missing: true } : { error: code }
  }
}

function readConf(file: string): unknown {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new SyncError('E_CONFIG', code === 'ENOENT' ? `--from-btsync: file ${file} not found` : `--from-btsync: cannot read ${file} (${code})`, { cause: err })
  }
  return parseJsonWithComments(text, file)
}

export function renderConfig(folder: FolderPlan, format: 'yaml' | 'json', source: string): string {
  if (format === 'json') return JSON.stringify(folder.config, null, 2) + '\n'
  const header = [
    `# sync-agent config migrated from ${source} (shared_folders[${folder.index}])`,
    `# The secret file does not exist yet: create it with \`sync-agent secret new\` (see the migrate output).`,
    ''
  ]
  return header.join('\n') + stringifyYaml(folder.config)
}

/** FILE for one folder; FILE with `.<name>` before its extension for several. */
export function outputPaths(out: string, plan: MigrationPlan): string[] {
  if (plan.folders.length === 1) return [out]
  const ext = extname(out)
  const stem = ext ? out.slice(0, -ext.length) : out
  return plan.folders.map((f) => `${stem}.${f.name}${ext || '.yaml'}`)
}

function formatReport(plan: MigrationPlan, source: string, written: string[]): string {
  const lines: string[] = []
  plan.folders.forEach((f, i) => {
    lines.push(`folder ${JSON.stringify(f.name)} (shared_folders[${f.index}])${written[i] ? ` → ${written[i]}` : ''}`)
    lines.push('  mapped:')
    for (const m of f.mapped) lines.push(`    ${m.from} → ${m.to}`)
    if (f.dropped.length > 0) lines.push('  dropped:')
    for (const d of f.dropped) lines.push(`    ${d.from}: ${d.why}`)
    if (f.warnings.length > 0) lines.push('  check:')
    for (const w of f.warnings) lines.push(`    ${w}`)
  })
  if (plan.dropped.length > 0) {
    lines.push(`dropped from ${basename(source)}:`)
    for (const d of plan.dropped) lines.push(`  ${d.from}: ${d.why}`)
  }
  lines.push('next steps:')
  for (const f of plan.folders) {
    const secret = f.config.secretFile
    lines.push(`  ${f.name}: on ONE server: (umask 077; sync-agent secret new > ${secret})`)
    lines.push(`  ${' '.repeat(f.name.length)}  copy ${secret} to the same path on the other servers (old secrets cannot be reused)`)
  }
  lines.push('  stop BitTorrent Sync / Resilio on every server, then start sync-agent with the new config' + (written.length > 0 ? `: sync-agent start --config ${written[0]}` : ''))
  return lines.join('\n') + '\n'
}

export function runMigration(opts: MigrateOptions): MigrateResult {
  const from = resolve(opts.cwd, opts.from)
  const out = opts.out === undefined ? undefined : resolve(opts.cwd, opts.out)
  const conf = readBtsyncConf(readConf(from), from)
  const plan = planMigration(conf, {
    confFile: from,
    configDir: out ? dirname(out) : opts.cwd,
    dataDir: opts.dataDir === undefined ? undefined : resolve(opts.cwd, opts.dataDir),
    readIgnoreList
  })
  if (!out) {
    if (plan.folders.length > 1) {
      throw new SyncError(
        'E_USAGE',
        `migrate: ${from} has ${plan.folders.length} shared folders and sync-agent runs one agent per folder: give --out FILE to get one config per folder (${outputPaths('FILE.yaml', plan).join(', ')})`
      )
    }
    const folder = plan.folders[0] as FolderPlan
    return { plan, written: [], stdoutConfig: renderConfig(folder, 'yaml', from), report: formatReport(plan, from, []) }
  }
  const paths = outputPaths(out, plan)
  const format = extname(out) === '.json' ? 'json' : 'yaml'
  if (!opts.force) {
    const existing = paths.filter((p) => existsSync(p))
    if (existing.length > 0) throw new SyncError('E_USAGE', `migrate: ${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}; not overwritten (pass --force to replace)`)
  }
  const texts = plan.folders.map((f) => renderConfig(f, format, from))
  paths.forEach((p, i) => {
    try {
      writeFileSync(p, texts[i] as string, { mode: 0o644, flag: opts.force ? 'w' : 'wx' })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new SyncError('E_IO', `migrate: cannot write ${p} (${code})`, { cause: err })
    }
  })
  return { plan, written: paths, stdoutConfig: null, report: formatReport(plan, from, paths) }
}
