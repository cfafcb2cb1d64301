import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { SyncError, validateConfig } from '@sync-agent/shared'
import { parseJsonWithComments, stripJsonComments } from '../src/migrate/json-with-comments.js'
import { convertIgnoreList } from '../src/migrate/ignore-list.js'
import { runMigration } from '../src/migrate/run-migration.js'
import { buildIgnoreRules } from '../src/ignore-rules.js'

const FIXTURES = join(import.meta.dirname, 'fixtures', 'btsync')

let root: string

beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'sa-migrate-')))
})
afterEach(() => {
  rmSync(root, { recursive: true, force: true })
})

function fixture(name: string, replace: Record<string, string> = {}): string {
  let text = readFileSync(join(FIXTURES, name), 'utf8')
  for (const [from, to] of Object.entries(replace)) text = text.split(from).join(to)
  const path = join(root, name)
  writeFileSync(path, text)
  return path
}

function migrateError(fn: () => unknown): SyncError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(SyncError)
    return err as SyncError
  }
  throw new Error('expected a SyncError, the migration succeeded')
}

describe('JSON with comments', () => {
  it('blanks // and /* */ comments and trailing commas, but not inside strings', () => {
    const text = '{ "url": "http://x//y", /* a\nb */ "n": [1, 2,], // end\n "s": "a /* b */ c", }'
    expect(JSON.parse(stripJsonComments(text))).toEqual({ url: 'http://x//y', n: [1, 2], s: 'a /* b */ c' })
    // positions are kept: the same length, the same line breaks
    expect(stripJsonComments(text)).toHaveLength(text.length)
    expect(stripJsonComments(text).split('\n')).toHaveLength(text.split('\n').length)
  })

  it('keeps escaped quotes inside strings', () => {
    expect(parseJsonWithComments('{"a": "say \\"hi\\" // not a comment"}', 'f')).toEqual({ a: 'say "hi" // not a comment' })
  })

  it('accepts a byte-order mark', () => {
    expect(parseJsonWithComments('\uFEFF{"a": 1}', 'f')).toEqual({ a: 1 })
  })

  it.each([
    ['bad-json.conf', /bad-json\.conf:3:3: not valid JSON/],
    ['unclosed-comment.conf', /unclosed-comment\.conf:2:28: a \/\* comment is never closed/],
    ['empty.conf', /empty\.conf is empty/]
  ])('%s: E_CONFIG naming file:line:column', (name, message) => {
    const path = join(FIXTURES, name)
    const err = migrateError(() => parseJsonWithComments(readFileSync(path, 'utf8'), path))
    expect(err.code).toBe('E_CONFIG')
    expect(err.message).toMatch(message)
  })
})

describe('IgnoreList → gitignore patterns', () => {
  it("converts Resilio's default list and keeps its meaning", () => {
    const text = '\uFEFF# IgnoreList is a UTF-8 encoded .txt file\r\n#\r\n$RECYCLE.BIN\r\n.DS_Store\r\n.Trash-*\r\n~*\r\n*.part\r\n\r\n.@__thumb\r\n'
    const { patterns, skipped } = convertIgnoreList(text)
    expect(patterns).toEqual(['$RECYCLE.BIN', '.DS_Store', '.Trash-*', '~*', '*.part', '.@__thumb'])
    expect(skipped).toEqual([])
    const rules = buildIgnoreRules([], patterns, null)
    expect(rules.isIgnored('uploads/2024/.DS_Store', false)).toBe(true)
    expect(rules.isIgnored('.Trash-1000', true)).toBe(true)
    expect(rules.isIgnored('uploads/~lock.docx', false)).toBe(true)
    expect(rules.isIgnored('uploads/photo.jpg', false)).toBe(false)
  })

  it('escapes what gitignore treats as syntax and turns backslashes into slashes', () => {
    const { patterns } = convertIgnoreList('!important.txt\nphotos[1].jpg\nuploads\\cache\n')
    expect(patterns).toEqual(['\\!important.txt', 'photos\\[1].jpg', 'uploads/cache'])
    const rules = buildIgnoreRules([], patterns, null)
    expect(rules.isIgnored('!important.txt', false)).toBe(true)
    expect(rules.isIgnored('photos[1].jpg', false)).toBe(true)
    expect(rules.isIgnored('photos1.jpg', false)).toBe(false)
    expect(rules.isIgnored('uploads/cache/x', false)).toBe(true)
  })

  it('skips lines that would ignore everything or name a Windows drive, and says which', () => {
    const { patterns, skipped } = convertIgnoreList('*\nC:\\Users\\x\nok.tmp\n')
    expect(patterns).toEqual(['ok.tmp'])
    expect(skipped.map((s) => s.line)).toEqual([1, 2])
  })
})

describe('migrate --from-btsync', () => {
  function wpSite(): string {
    const folder = join(root, 'wp-content')
    mkdirSync(join(folder, '.sync'), { recursive: true })
    writeFileSync(join(folder, '.sync', 'IgnoreList'), '# OS generated files #\n.DS_Store\nThumbs.db\n*.bak\nbackups/\n')
    return folder
  }

  it('maps a WordPress server sync.conf: folder, data, listen, known_hosts, ignore list, rescan; tracker/relay off, new secret', () => {
    const folder = wpSite()
    const conf = fixture('wordpress-server.conf', { __FOLDER__: folder })
    const out = join(root, 'etc', 'sync-agent.yaml')
    mkdirSync(join(root, 'etc'))
    const result = runMigration({ from: conf, out, cwd: root })
    expect(result.written).toEqual([out])
    const written = parseYaml(readFileSync(out, 'utf8'))
    expect(written).toEqual({
      folder,
      data: '/var/lib/sync-agent',
      secretFile: join(root, 'etc', 'wp-content.secret'),
      listen: '0.0.0.0:44444',
      peers: ['10.0.0.12:44444', 'web3.example.org:44444'],
      rescanIntervalS: 600,
      versionsDir: '/var/lib/sync-agent-versions',
      ignore: { presets: ['wordpress'], patterns: ['/.sync/', '.DS_Store', 'Thumbs.db', '*.bak', 'backups/'] }
    })
    // what we write passes our own schema
    expect(validateConfig(written).ok).toBe(true)
    const report = result.report
    expect(report).toMatch(/known_hosts\[3\] skipped: expected host:port, got "not a host"/)
    // relay and tracker were off, LAN search on: all three end up off, and the report says which were on
    expect(report).toMatch(/tracker, relay, DHT and LAN search: off: sync-agent dials only its known peers \(on in this sync\.conf or by Resilio's default: search_lan\)/)
    expect(report).toMatch(/secret: BitTorrent Sync \/ Resilio secrets cannot be reused/)
    expect(report).toMatch(/use_sync_trash true → versionsDir \/var\/lib\/sync-agent-versions/)
    expect(report).toMatch(/sync-agent secret new > .*wp-content\.secret/)
    expect(report).toMatch(/device_name: peers are named by their device id/)
    expect(report).toMatch(/pid_file: /)
    expect(report).toMatch(/IgnoreList \(4 patterns\) → ignore\.patterns/)
    // the old secret never reaches our files or output
    expect(readFileSync(out, 'utf8')).not.toContain('AXXXX')
    expect(report).not.toContain('AXXXX')
  })

  it('writes JSON when --out ends in .json', () => {
    const conf = fixture('wordpress-server.conf', { __FOLDER__: wpSite() })
    const out = join(root, 'sync-agent.json')
    runMigration({ from: conf, out, cwd: root })
    expect(JSON.parse(readFileSync(out, 'utf8')).listen).toBe('0.0.0.0:44444')
  })

  it('never overwrites an existing config unless forced', () => {
    const conf = fixture('wordpress-server.conf', { __FOLDER__: wpSite() })
    const out = join(root, 'sync-agent.yaml')
    writeFileSync(out, 'keep me\n')
    const err = migrateError(() => runMigration({ from: conf, out, cwd: root }))
    expect(err.code).toBe('E_USAGE')
    expect(err.message).toMatch(/already exists; not overwritten \(pass --force/)
    expect(readFileSync(out, 'utf8')).toBe('keep me\n')
    runMigration({ from: conf, out, cwd: root, force: true })
    expect(readFileSync(out, 'utf8')).toMatch(/listen: 0\.0\.0\.0:44444/)
  })

  it('several shared folders: one config per folder with its own data dir, or a clear message without --out', () => {
    const conf = fixture('two-folders.conf')
    const err = migrateError(() => runMigration({ from: conf, cwd: root }))
    expect(err.code).toBe('E_USAGE')
    expect(err.message).toMatch(/has 2 shared folders .* give --out FILE/)
    const result = runMigration({ from: conf, out: join(root, 'agent.yaml'), cwd: root })
    expect(result.written).toEqual([join(root, 'agent.wp-content.yaml'), join(root, 'agent.wp-content-2.yaml')])
    const [a, b] = result.written.map((p) => parseYaml(readFileSync(p, 'utf8')))
    expect(a.folder).toBe('/srv/www/site-a/wp-content')
    expect(b.folder).toBe('/srv/www/site-b/wp-content')
    // beside Resilio's storage dir, one per folder
    expect(a.data).toBe('/srv/btsync/sync-agent/wp-content')
    expect(b.data).toBe('/srv/btsync/sync-agent/wp-content-2')
    expect(a.secretFile).not.toBe(b.secretFile)
    expect(result.report).toMatch(/selective_sync is on: sync-agent syncs the whole folder/)
    expect(result.report).toMatch(/shared_folders\[1\]\.paused: no equivalent/)
    expect(result.report).toMatch(/check_for_updates: updates come with the package or image/)
    expect(result.report).toMatch(/several folders share listening_port/)
  })

  it('minimal file: missing fields get defaults and the report says what to check', () => {
    const conf = fixture('minimal.conf')
    const result = runMigration({ from: conf, cwd: root, dataDir: join(root, 'state') })
    const config = parseYaml(result.stdoutConfig as string)
    expect(config).toMatchObject({ folder: join(root, 'wp-content'), data: join(root, 'state'), listen: '0.0.0.0:7657', peers: [] })
    expect(config.ignore.patterns).toEqual(['/.sync/'])
    expect(config).not.toHaveProperty('rescanIntervalS')
    // Resilio's Archive is on by default: versions beside the data dir, kept 30 days (ours and Resilio's default)
    expect(config).toMatchObject({ versionsDir: join(root, 'state-versions') })
    expect(config).not.toHaveProperty('versionsKeepDays')
    expect(result.report).toMatch(/use_sync_trash \(not set: on by default\) → versionsDir /)
    expect(result.report).toMatch(/dir "wp-content" is relative/)
    expect(result.report).toMatch(/listening_port is not set: listening on 7657/)
    expect(result.report).toMatch(/no usable known_hosts/)
    // Resilio's defaults were on: the report says they are off now
    expect(result.report).toMatch(/DHT and LAN search: off: .*default: use_tracker, use_relay_server, search_lan\)/)
    expect(result.report).not.toMatch(/secret: /)
  })

  it('the Archive: sync_trash_ttl becomes versionsKeepDays; use_sync_trash false keeps no versions', () => {
    const kept = runMigration({ from: fixture('ttl.conf', {}), cwd: root, dataDir: join(root, 'state') })
    expect(parseYaml(kept.stdoutConfig as string)).toMatchObject({ versionsDir: join(root, 'state-versions'), versionsKeepDays: 7 })
    expect(kept.report).toMatch(/sync_trash_ttl 7 → versionsKeepDays 7/)
    const off = runMigration({ from: fixture('no-trash.conf', {}), cwd: root, dataDir: join(root, 'state') })
    const config = parseYaml(off.stdoutConfig as string)
    expect(config).not.toHaveProperty('versionsDir')
    expect(config).not.toHaveProperty('versionsKeepDays')
    expect(off.report).not.toMatch(/use_sync_trash/)
  })

  it('rate limits: upload_limit and download_limit (kB/s) become maxSendKiBps and maxRecvKiBps; 0 sets nothing', () => {
    const limited = runMigration({ from: fixture('limits.conf', {}), cwd: root, dataDir: join(root, 'state') })
    expect(parseYaml(limited.stdoutConfig as string)).toMatchObject({ maxRecvKiBps: 2048, maxSendKiBps: 8 })
    expect(limited.report).toMatch(/download_limit 2048 kB\/s → maxRecvKiBps 2048/)
    expect(limited.report).toMatch(/upload_limit 4 kB\/s → maxSendKiBps 8 \(the lowest limit that keeps a connection alive\)/)
    // Resilio leaves LAN peers unlimited unless rate_limit_local_peers is set
    expect(parseYaml(limited.stdoutConfig as string)).toMatchObject({ limitLan: false })
    expect(limited.report).toMatch(/rate_limit_local_peers \(not set: off by default\) → limitLan false \(peers at LAN addresses are not limited\)/)
    const lan = runMigration({ from: fixture('limits-lan.conf', {}), cwd: root, dataDir: join(root, 'state') })
    expect(parseYaml(lan.stdoutConfig as string)).toMatchObject({ maxRecvKiBps: 512, limitLan: true })
    expect(lan.report).toMatch(/rate_limit_local_peers true → limitLan true/)
    const none = runMigration({ from: fixture('ttl.conf', {}), cwd: root, dataDir: join(root, 'state') })
    expect(parseYaml(none.stdoutConfig as string)).not.toHaveProperty('maxSendKiBps')
    expect(parseYaml(none.stdoutConfig as string)).not.toHaveProperty('maxRecvKiBps')
    expect(parseYaml(none.stdoutConfig as string)).not.toHaveProperty('limitLan')
  })

  it('an unreadable IgnoreList is reported, not fatal', () => {
    const folder = wpSite()
    // we run as root, which reads any file: a directory in its place gives a real read error
    rmSync(join(folder, '.sync', 'IgnoreList'))
    mkdirSync(join(folder, '.sync', 'IgnoreList'))
    const conf = fixture('wordpress-server.conf', { __FOLDER__: folder })
    const result = runMigration({ from: conf, cwd: root })
    expect(result.report).toMatch(/cannot read .*IgnoreList \(EISDIR\): its rules are not migrated/)
  })

  it.each([
    ['resilio-sample.conf', 'E_CONFIG', /shared_folders: missing: .*web UI live in Resilio's own database/],
    ['bad-json.conf', 'E_CONFIG', /bad-json\.conf:3:3: not valid JSON/],
    ['unclosed-comment.conf', 'E_CONFIG', /never closed/],
    ['bad-types.conf', 'E_CONFIG', /shared_folders\[0\]\.known_hosts: expected a list of "host:port" strings, got string "10\.0\.0\.2:44444"/],
    ['bad-port.conf', 'E_CONFIG', /listening_port: expected a whole number from 0 to 65535, got string "44444"/],
    ['no-dir.conf', 'E_CONFIG', /shared_folders\[0\]\.dir: missing/],
    ['empty.conf', 'E_CONFIG', /is empty/],
    ['array.conf', 'E_CONFIG', /expected a JSON object with "shared_folders", got a list/]
  ])('%s is refused: %s naming the problem, nothing written', (name, code, message) => {
    const out = join(root, 'out.yaml')
    const err = migrateError(() => runMigration({ from: join(FIXTURES, name), out, cwd: root }))
    expect(err.code).toBe(code)
    expect(err.message).toMatch(message)
    expect(existsSync(out)).toBe(false)
  })

  it('a missing sync.conf is named', () => {
    const err = migrateError(() => runMigration({ from: 'nope.conf', cwd: root }))
    expect(err.message).toBe(`--from-btsync: file ${join(root, 'nope.conf')} not found`)
  })
})
