import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { newSecret, runCli } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { freePorts } from './helpers/ports.ts'
import { waitConverged } from './helpers/sync.ts'
import { exists } from './helpers/files.ts'

/** A sync.conf as a Resilio server of a two-node WordPress setup has it (comments included). */
function syncConf(folder: string, listenPort: number, otherPort: number): string {
  return `// Resilio Sync config of this web server
{
  "device_name": "web",
  "listening_port": ${listenPort}, // fixed so the other server's known_hosts can name it
  "storage_path": "/var/lib/resilio-sync",
  "use_upnp": false,
  "shared_folders": [
    {
      "secret": "AOLDSECRETOLDSECRETOLDSECRETOLDSE", /* cannot be reused */
      "dir": ${JSON.stringify(folder)},
      "use_relay_server": true,
      "use_tracker": true,
      "search_lan": false,
      "known_hosts": [ "127.0.0.1:${otherPort}" ],
    }
  ]
}
`
}

describe('sync-agent migrate --from-btsync (CLI)', () => {
  const harness = useHarness()

  it('prints the config on stdout and the report on stderr; with --out writes the file', async () => {
    const dir = await harness.tmpDir()
    const folder = path.join(dir, 'wp-content')
    await fs.mkdir(folder)
    await fs.writeFile(path.join(dir, 'sync.conf'), syncConf(folder, 44444, 44445))
    const toStdout = await runCli(['migrate', '--from-btsync', 'sync.conf', '--data', 'state'], { cwd: dir })
    expect(toStdout.code).toBe(0)
    expect(parseYaml(toStdout.stdout)).toMatchObject({ folder, data: path.join(dir, 'state'), listen: '0.0.0.0:44444', peers: ['127.0.0.1:44445'] })
    expect(toStdout.stderr).toMatch(/sync-agent secret new/)
    expect(toStdout.stderr).toMatch(/tracker, relay, DHT and LAN search: off/)

    const toFile = await runCli(['migrate', '--from-btsync', 'sync.conf', '--out', 'agent.yaml'], { cwd: dir })
    expect(toFile.code).toBe(0)
    expect(toFile.stdout).toMatch(/→ .*agent\.yaml/)
    expect(toFile.stderr).toBe('')
    expect(parseYaml(await fs.readFile(path.join(dir, 'agent.yaml'), 'utf8')).listen).toBe('0.0.0.0:44444')
  })

  it('malformed sync.conf: exit 2, one line naming file:line:column, nothing written', async () => {
    const dir = await harness.tmpDir()
    await fs.writeFile(path.join(dir, 'sync.conf'), '{\n  "shared_folders": [\n    { "dir": "/x" }\n  \n}\n')
    const result = await runCli(['migrate', '--from-btsync', 'sync.conf', '--out', 'agent.yaml'], { cwd: dir })
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
    expect(result.stderr).toMatch(/sync\.conf:5:1: not valid JSON/)
    expect(await exists(path.join(dir, 'agent.yaml'))).toBe(false)
  })

  it('without --from-btsync: usage error, exit 2', async () => {
    const result = await runCli(['migrate'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/give --from-btsync PATH/)
  })

  it('two migrated servers sync with a new secret, and ignore what their IgnoreLists ignored', async () => {
    const dir = await harness.tmpDir()
    const [portA, portB] = (await freePorts(2)) as [number, number]
    const servers = [
      { name: 'a', port: portA, other: portB },
      { name: 'b', port: portB, other: portA }
    ]
    const configs: string[] = []
    for (const s of servers) {
      const etc = path.join(dir, `${s.name}-etc`)
      const folder = path.join(dir, `${s.name}-wp-content`)
      await fs.mkdir(path.join(folder, '.sync'), { recursive: true })
      await fs.mkdir(etc)
      await fs.writeFile(path.join(folder, '.sync', 'IgnoreList'), '# Resilio ignore list\n*.bak\n')
      await fs.writeFile(path.join(folder, '.sync', 'ID'), `resilio state of ${s.name}`)
      await fs.writeFile(path.join(etc, 'sync.conf'), syncConf(folder, s.port, s.other))
      const out = path.join(etc, 'sync-agent.yaml')
      const result = await runCli(['migrate', '--from-btsync', path.join(etc, 'sync.conf'), '--out', out, '--data', path.join(dir, `${s.name}-state`)])
      expect(result.code, result.stderr).toBe(0)
      configs.push(out)
    }
    // the one new secret, copied to both servers as the report says
    const secret = await newSecret()
    for (const out of configs) {
      const config = parseYaml(await fs.readFile(out, 'utf8')) as { secretFile: string }
      await fs.writeFile(config.secretFile, secret + '\n', { mode: 0o600 })
    }
    const agents = []
    for (const [i, s] of servers.entries()) {
      const config = parseYaml(await fs.readFile(configs[i] as string, 'utf8')) as { folder: string; data: string }
      const agent = await harness.agent({ name: s.name, folder: config.folder, data: config.data, listen: false, configFile: configs[i] })
      agents.push(agent)
    }
    const [a, b] = agents as [(typeof agents)[0], (typeof agents)[0]]
    await fs.mkdir(path.join(a.folder, 'uploads'))
    await fs.writeFile(path.join(a.folder, 'uploads', 'cat.jpg'), 'meow')
    await fs.writeFile(path.join(a.folder, 'uploads', 'old.bak'), 'backup')
    await a.start()
    await b.start()
    // .sync/ differs by design (each server's own Resilio state), and so does the ignored *.bak
    await waitConverged([a, b], { ignore: (p) => p === '.sync' || p.startsWith('.sync/') || p.endsWith('.bak') })
    expect(await fs.readFile(path.join(b.folder, 'uploads', 'cat.jpg'), 'utf8')).toBe('meow')
    expect(await exists(path.join(b.folder, 'uploads', 'old.bak'))).toBe(false)
    // Resilio's own state stays where it was, on each side
    expect(await fs.readFile(path.join(b.folder, '.sync', 'ID'), 'utf8')).toBe('resilio state of b')
  })
})
