import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { useHarness } from './helpers/harness.ts'
import { repoRoot } from './helpers/paths.ts'

/**
 * No Docker engine runs here: the files under docker/ are checked by what they say. compose
 * files are parsed (with YAML merge keys, as compose reads them) and cross-checked against
 * each other and docker/haproxy.cfg; the Dockerfile's instructions are parsed; the scripts
 * are linted and run; the systemd unit is verified by systemd-analyze.
 */
const run = promisify(execFile)
const dockerDir = path.join(repoRoot, 'docker')
const haproxyCfg = path.join(dockerDir, 'haproxy.cfg')

interface Service {
  image?: string
  build?: { context: string; dockerfile: string; args?: Record<string, string> }
  command?: string[]
  entrypoint?: string[]
  user?: string
  environment?: Record<string, string>
  volumes?: string[]
  secrets?: string[]
  healthcheck?: { test: string[] }
  depends_on?: Record<string, { condition: string }>
  ports?: string[]
  profiles?: string[]
}
interface Compose {
  services: Record<string, Service>
  secrets?: Record<string, { file: string }>
  volumes?: Record<string, unknown>
}

function readCompose(name: string): Compose {
  return parseYaml(readFileSync(path.join(dockerDir, name), 'utf8'), { merge: true }) as Compose
}

/** `source:target[:mode]` → its parts (a source may be `${VAR:-default}`, colon included). */
function mounts(service: Service): Array<{ source: string; target: string; readOnly: boolean }> {
  return (service.volumes ?? []).map((v) => {
    const m = /^(\$\{[^}]*\}|[^:]+):([^:]+)(?::(ro|rw))?$/.exec(v)
    if (!m) throw new Error(`cannot read the volume ${JSON.stringify(v)}`)
    return { source: m[1] as string, target: m[2] as string, readOnly: m[3] === 'ro' }
  })
}

function mountAt(service: Service, target: string): string | undefined {
  return mounts(service).find((m) => m.target === target)?.source
}

function portOf(hostPort: string | undefined): string {
  const port = hostPort?.split(':').pop()
  if (!port) throw new Error(`no port in ${hostPort}`)
  return port
}

/** The ${VAR} names a HAProxy config expands (comments left out). */
function haproxyVariables(text: string): string[] {
  const code = text.split('\n').map((line) => line.replace(/#.*$/, '')).join('\n')
  return [...new Set([...code.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1] as string))].sort()
}

describe('docker/compose.yaml', () => {
  const compose = readCompose('compose.yaml')
  const s = compose.services
  const sites = ['wp1', 'wp2'] as const

  it('has HAProxy, MariaDB, two official WordPress images, a sync-agent sidecar and a ready gate for each', () => {
    expect(Object.keys(s).sort()).toEqual(['certs', 'db', 'haproxy', 'wp1', 'wp1-agent', 'wp1-ready', 'wp2', 'wp2-agent', 'wp2-ready'])
    expect(s.haproxy!.image).toMatch(/^haproxy:/)
    expect(s.db!.image).toMatch(/^mariadb:/)
    for (const wp of sites) {
      expect(s[wp]!.image).toMatch(/^wordpress:/)
      expect(s[`${wp}-agent`]!.build?.dockerfile).toBe('docker/Dockerfile')
    }
  })

  it.each(sites)('%s and its sidecar share one wp-content volume, the agent syncs exactly that mount, the two sites do not share it', (wp) => {
    const agent = s[`${wp}-agent`]!
    const folder = agent.environment!.SYNC_AGENT_FOLDER!
    const volume = mountAt(s[wp]!, '/var/www/html/wp-content')
    expect(volume).toBeDefined()
    expect(mountAt(agent, folder)).toBe(volume)
    expect(compose.volumes).toHaveProperty(volume!)
    const other = sites.find((x) => x !== wp)!
    expect(mountAt(s[other]!, '/var/www/html/wp-content')).not.toBe(volume)
    // the state dir is a volume of its own, never inside the folder
    const data = agent.environment!.SYNC_AGENT_DATA!
    expect(mountAt(agent, data)).toMatch(/^wp\d-agent-data$/)
    expect(data.startsWith(folder + '/')).toBe(false)
  })

  it.each(sites)('%s-agent reads the folder secret from a compose secret and dials the other agent at its listen port', (wp) => {
    const agent = s[`${wp}-agent`]!
    expect(agent.secrets).toEqual(['sync_agent_secret'])
    expect(agent.environment!.SYNC_AGENT_SECRET_FILE).toBe('/run/secrets/sync_agent_secret')
    expect(agent.environment!.SYNC_AGENT_SECRET).toBeUndefined()
    expect(compose.secrets!.sync_agent_secret!.file).toBeTruthy()
    const other = sites.find((x) => x !== wp)!
    const otherListen = portOf(s[`${other}-agent`]!.environment!.SYNC_AGENT_LISTEN)
    expect(agent.environment!.SYNC_AGENT_PEERS).toBe(`${other}-agent:${otherListen}`)
  })

  it('every long-running service has a health check; the agents use the image entrypoint on /healthz', () => {
    for (const name of ['haproxy', 'db', 'wp1', 'wp2', 'wp1-agent', 'wp2-agent']) {
      expect([name, s[name]!.healthcheck?.test?.[0]]).toEqual([name, expect.stringMatching(/^CMD(-SHELL)?$/)])
    }
    expect(s['wp1-agent']!.healthcheck!.test).toEqual(['CMD', '/usr/local/bin/sync-agent-entrypoint', 'healthcheck'])
    expect(s['wp1-agent']!.environment!.SYNC_AGENT_HTTP).toMatch(/^0\.0\.0\.0:\d+$/)
  })

  it.each(sites)('%s starts only after its agent is ready: a wait-ready one-shot on the agent data volume', (wp) => {
    const gate = s[`${wp}-ready`]!
    expect(gate.command).toEqual(['wait-ready'])
    expect(gate.image).toBe(s[`${wp}-agent`]!.image)
    expect(gate.depends_on![`${wp}-agent`]!.condition).toBe('service_healthy')
    const dataDir = gate.environment!.SYNC_AGENT_DATA!
    expect(mountAt(gate, dataDir)).toBe(mountAt(s[`${wp}-agent`]!, s[`${wp}-agent`]!.environment!.SYNC_AGENT_DATA!))
    expect(s[wp]!.depends_on![`${wp}-ready`]!.condition).toBe('service_completed_successfully')
    expect(s[wp]!.depends_on!.db!.condition).toBe('service_healthy')
  })

  it('the database password is a compose secret for MariaDB and WordPress', () => {
    expect(s.db!.environment!.MARIADB_PASSWORD_FILE).toBe('/run/secrets/db_password')
    expect(s.wp1!.environment!.WORDPRESS_DB_PASSWORD_FILE).toBe('/run/secrets/db_password')
    expect(compose.secrets!.db_password!.file).toBeTruthy()
  })

  it('HAProxy: TLS from the generated certificate, docker/haproxy.cfg, agent-check to each sidecar on its agent-check port', () => {
    const h = s.haproxy!
    const env = h.environment!
    expect(mountAt(h, '/usr/local/etc/haproxy/haproxy.cfg')).toBe('./haproxy.cfg')
    // the certificate: written by the certs one-shot into a volume HAProxy mounts read-only
    const certDir = path.posix.dirname(env.HAPROXY_CERT!)
    const certVolume = mountAt(h, certDir)
    expect(mounts(h).find((m) => m.target === certDir)?.readOnly).toBe(true)
    expect(mountAt(s.certs!, certDir)).toBe(certVolume)
    expect(s.certs!.entrypoint).toEqual(['gen-selfsigned-cert', env.HAPROXY_CERT])
    expect(h.depends_on!.certs!.condition).toBe('service_completed_successfully')
    for (const [i, wp] of sites.entries()) {
      expect(env[`WP${i + 1}_ADDR`]).toBe(`${wp}:80`)
      expect(env[`WP${i + 1}_AGENT_HOST`]).toBe(`${wp}-agent`)
    }
    expect(env.WP_AGENT_PORT).toBe(portOf(s['wp1-agent']!.environment!.SYNC_AGENT_AGENT_CHECK))
    expect(env.WP_AGENT_PORT).toBe(portOf(s['wp2-agent']!.environment!.SYNC_AGENT_AGENT_CHECK))
    // published ports are the ones HAProxy binds
    expect(h.ports!.map((p) => p.split(':').pop())).toEqual([portOf(env.HAPROXY_HTTP_BIND), portOf(env.HAPROXY_HTTPS_BIND)])
  })
})

describe('docker/compose.host-daemon.yaml', () => {
  const compose = readCompose('compose.host-daemon.yaml')
  const s = compose.services

  it('WordPress bind-mounts the host directory the host daemon syncs; HAProxy (lb profile) checks the hosts\' agents', () => {
    expect(s.wordpress!.profiles).toEqual(['web'])
    expect(mountAt(s.wordpress!, '/var/www/html/wp-content')).toMatch(/^\$\{WP_CONTENT_DIR:-\/srv\/wordpress\/wp-content\}$/)
    expect(s.haproxy!.profiles).toEqual(['lb'])
    expect(s.haproxy!.environment!.WP1_AGENT_HOST).toBe('${WP1_HOST:?set WP1_HOST}')
    // no sidecar here: the agents run on the hosts
    expect(Object.values(s).some((x) => x.build && x.entrypoint === undefined)).toBe(false)
  })
})

describe.skipIf(!existsSync(haproxyCfg))('docker/haproxy.cfg with the compose files', () => {
  const harness = useHarness()
  const cfg = existsSync(haproxyCfg) ? readFileSync(haproxyCfg, 'utf8') : ''

  it('uses agent-check on the agents, and both compose files set every variable it expands', () => {
    expect(cfg).toMatch(/agent-check/)
    expect(cfg).toMatch(/agent-port "\$\{WP_AGENT_PORT\}"/)
    expect(cfg).toMatch(/agent-addr "\$\{WP1_AGENT_HOST\}"/)
    for (const file of ['compose.yaml', 'compose.host-daemon.yaml']) {
      const env = readCompose(file).services.haproxy!.environment!
      expect([file, haproxyVariables(cfg).filter((v) => !(v in env))]).toEqual([file, []])
    }
  })

  it('haproxy -c accepts it with compose.yaml\'s environment and a certificate from gen-selfsigned-cert', async () => {
    const dir = await harness.tmpDir()
    const cert = path.join(dir, 'certs', 'site.pem')
    await run('/bin/sh', [path.join(dockerDir, 'gen-selfsigned-cert.sh'), cert])
    const env: Record<string, string> = { ...readCompose('compose.yaml').services.haproxy!.environment! }
    env.HAPROXY_CERT = cert
    env.HAPROXY_STATS_SOCKET = path.join(dir, 'admin.sock')
    // compose's service names resolve only inside its network
    for (const key of Object.keys(env)) env[key] = env[key]!.replace(/^wp\d(-agent)?\b/, '127.0.0.1')
    const { stdout, stderr } = await run('haproxy', ['-c', '-f', haproxyCfg], { env: { PATH: process.env.PATH!, ...env } })
    expect(stdout + stderr).toMatch(/Configuration file is valid/)
  })
})

describe('docker/gen-selfsigned-cert.sh', () => {
  const harness = useHarness()

  it('writes one PEM with certificate and key (0640, given owner), keeps it on a second run', async () => {
    const dir = await harness.tmpDir()
    const out = path.join(dir, 'certs', 'site.pem')
    const script = path.join(dockerDir, 'gen-selfsigned-cert.sh')
    const env = { PATH: process.env.PATH!, CERT_CN: 'wp.example', CERT_OWNER: '99:99' }
    await run('/bin/sh', [script, out], { env })
    const pem = await fs.readFile(out, 'utf8')
    expect(pem).toMatch(/-----BEGIN CERTIFICATE-----[\s\S]+-----BEGIN PRIVATE KEY-----/)
    const st = await fs.stat(out)
    expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o640, 99, 99])
    // the directory stays traversable for HAProxy's user
    expect((await fs.stat(path.dirname(out))).mode & 0o005).toBe(0o005)
    const { stdout } = await run('openssl', ['x509', '-in', out, '-noout', '-subject', '-ext', 'subjectAltName'])
    expect(stdout).toMatch(/CN\s*=\s*wp\.example/)
    expect(stdout).toMatch(/DNS:wp\.example/)
    const again = await run('/bin/sh', [script, out], { env })
    expect(again.stdout).toMatch(/keeping/)
    expect(await fs.readFile(out, 'utf8')).toBe(pem)
  })
})

/** Dockerfile instructions: continuation lines joined, comments dropped, grouped by stage. */
function dockerfileStages(text: string): Array<{ from: string; name: string | null; lines: Array<[string, string]> }> {
  const joined = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const stages: Array<{ from: string; name: string | null; lines: Array<[string, string]> }> = []
  const args = new Map<string, string>()
  for (const line of joined) {
    const [, op, rest] = /^(\S+)\s+(.*)$/.exec(line) as unknown as [string, string, string]
    const instruction = op.toUpperCase()
    if (instruction === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=') as [string, string | undefined]
      if (v !== undefined) args.set(k, v)
      continue
    }
    if (instruction === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!
      const image = m[1]!.replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? '')
      stages.push({ from: image, name: m[2] ?? null, lines: [] })
      continue
    }
    stages[stages.length - 1]!.lines.push([instruction, rest])
  }
  return stages
}

describe('docker/Dockerfile', () => {
  const text = readFileSync(path.join(dockerDir, 'Dockerfile'), 'utf8')
  const stages = dockerfileStages(text)
  const final = stages[stages.length - 1]!
  const get = (op: string) => final.lines.filter(([o]) => o === op).map(([, rest]) => rest)

  it('is multi-stage on node:20-bookworm-slim (glibc: the Hypercore prebuilds do not support musl); the build stage runs build-app.sh', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2)
    for (const stage of stages) expect(stage.from).toBe('node:20-bookworm-slim')
    const build = stages.find((st) => st.name === 'build')!
    expect(build.lines.some(([op, rest]) => op === 'RUN' && /docker\/build-app\.sh \/app/.test(rest))).toBe(true)
    expect(get('COPY').some((c) => /^--from=build \/app /.test(c))).toBe(true)
  })

  it('runs as a non-root user whose UID/GID are build args defaulting to www-data (33:33)', () => {
    const args = Object.fromEntries(get('ARG').map((a) => a.split('=') as [string, string]))
    expect(args).toMatchObject({ SYNC_AGENT_UID: '33', SYNC_AGENT_GID: '33' })
    const user = get('USER')
    expect(user).toEqual(['${SYNC_AGENT_UID}:${SYNC_AGENT_GID}'])
    // the user's state dir and the folder mount point belong to it
    expect(get('RUN').some((r) => /chown "\$\{SYNC_AGENT_UID\}:\$\{SYNC_AGENT_GID\}" \/var\/lib\/sync-agent/.test(r))).toBe(true)
  })

  it('has tini as init, the entrypoint script, a HEALTHCHECK through it, and a volume for the data dir', () => {
    expect(get('RUN').some((r) => /apt-get install[^&]*\btini\b/.test(r))).toBe(true)
    expect(JSON.parse(get('ENTRYPOINT')[0]!)).toEqual(['/usr/bin/tini', '--', '/usr/local/bin/sync-agent-entrypoint'])
    expect(JSON.parse(get('CMD')[0]!)).toEqual(['start'])
    expect(get('HEALTHCHECK')[0]).toMatch(/CMD \["\/usr\/local\/bin\/sync-agent-entrypoint", "healthcheck"\]$/)
    const env = get('ENV').join(' ')
    const data = /SYNC_AGENT_DATA=(\S+)/.exec(env)![1]
    expect(JSON.parse(get('VOLUME')[0]!)).toContain(data)
  })

  it('sets glibc\'s malloc as the systemd unit does (the benchmark reads the unit\'s)', () => {
    const unit = readFileSync(path.join(dockerDir, 'systemd', 'sync-agent.service'), 'utf8')
    const fromUnit = [...unit.matchAll(/^Environment=(MALLOC_[A-Z_]+=\S+)$/gm)].map((m) => m[1]).sort()
    const fromImage = [...get('ENV').join(' ').matchAll(/\b(MALLOC_[A-Z_]+=\S+)/g)].map((m) => m[1]).sort()
    expect(fromUnit).toEqual(['MALLOC_ARENA_MAX=2', 'MALLOC_MMAP_THRESHOLD_=1048576', 'MALLOC_TRIM_THRESHOLD_=131072'])
    expect(fromImage).toEqual(fromUnit)
  })

  it('exposes the ports its ENV configures (peers, HTTP, agent-check)', () => {
    const env = get('ENV').join(' ')
    const exposed = get('EXPOSE').join(' ').split(/\s+/)
    for (const name of ['SYNC_AGENT_LISTEN', 'SYNC_AGENT_HTTP', 'SYNC_AGENT_AGENT_CHECK']) {
      const value = new RegExp(`${name}=(\\S+)`).exec(env)?.[1]
      expect([name, exposed.includes(portOf(value))]).toEqual([name, true])
    }
  })

  it('copies only files that exist and that Dockerfile.dockerignore does not exclude', () => {
    const ignored = dockerIgnored()
    for (const stage of stages) {
      for (const [op, rest] of stage.lines) {
        if (op !== 'COPY' || rest.startsWith('--from=')) continue
        for (const src of rest.split(/\s+/).slice(0, -1)) {
          expect([src, existsSync(path.join(repoRoot, src))]).toEqual([src, true])
          expect([src, ignored(src.replace(/\/$/, ''))]).toEqual([src, false])
        }
      }
    }
  })
})

/** Dockerfile.dockerignore as a predicate on repository-relative paths. */
function dockerIgnored(): (relPath: string) => boolean {
  const patterns = readFileSync(path.join(dockerDir, 'Dockerfile.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  return (p) =>
    patterns.some((pattern) => {
      if (pattern.startsWith('**/')) {
        const tail = pattern.slice(3)
        return p.split('/').some((seg) => seg === tail || (tail.startsWith('*.') && seg.endsWith(tail.slice(1))))
      }
      if (pattern.includes('*')) return new RegExp('^' + pattern.replace(/[.]/g, '\\.').replace(/\*/g, '[^/]*') + '(/|$)').test(p)
      return p === pattern || p.startsWith(pattern + '/')
    })
}

describe('the Dockerfile build stage, replayed without Docker', () => {
  const harness = useHarness()

  it("its COPYs (minus .dockerignore) are enough for its RUNs; the result runs alone with this platform's prebuilds only", async () => {
    const stage = dockerfileStages(readFileSync(path.join(dockerDir, 'Dockerfile'), 'utf8')).find((st) => st.name === 'build')!
    const root = await harness.tmpDir()
    const context = path.join(root, 'src')
    const app = path.join(root, 'app')
    await fs.mkdir(context)
    const ignored = dockerIgnored()
    const pnpmVersion = (await run('pnpm', ['--version'])).stdout.trim()
    for (const [op, rest] of stage.lines) {
      if (op === 'COPY') {
        const words = rest.split(/\s+/)
        const dest = path.join(context, words[words.length - 1]!)
        for (const src of words.slice(0, -1)) {
          const from = path.join(repoRoot, src)
          if ((await fs.stat(from)).isDirectory()) {
            // Docker copies a directory's contents into the destination
            await fs.cp(from, dest, { recursive: true, filter: (f) => !ignored(path.relative(repoRoot, f)) })
          } else {
            await fs.mkdir(dest.endsWith('/') ? dest : path.dirname(dest), { recursive: true })
            await fs.copyFile(from, dest.endsWith('/') || words.length > 2 ? path.join(dest, path.basename(src)) : dest)
          }
        }
      } else if (op === 'RUN') {
        if (/^npm install -g "pnpm@/.test(rest)) {
          // installs the pinned pnpm; the one here must be that version
          const pinned = (JSON.parse(await fs.readFile(path.join(context, 'package.json'), 'utf8')) as { packageManager: string }).packageManager.split('@')[1]
          expect(pnpmVersion).toBe(pinned)
          continue
        }
        await run('/bin/sh', ['-c', rest.replace(/ \/app$/, ` ${app}`)], { cwd: context, maxBuffer: 64 * 1024 * 1024 })
      }
    }
    // nothing outside the copied context was used
    expect(existsSync(path.join(context, 'test'))).toBe(false)
    expect(existsSync(path.join(context, 'packages', 'sync-agent', 'test'))).toBe(false)
    const { stdout } = await run(process.execPath, [path.join(app, 'bin', 'sync-agent.js'), 'secret', 'new'], { cwd: '/' })
    expect(stdout.trim()).toMatch(/^sa1rw-/)
    // the copy has the bundle's code cache, and V8 takes it (build-app.sh checks this too)
    const loaded = await run(process.execPath, ['-e', "const l = require('./bin/bundle-loader.cjs'); l.load(); process.stdout.write(l.lastLoad.codeCache)"], { cwd: app, env: { ...process.env, NODE_OPTIONS: '' } })
    expect(loaded.stdout).toBe('used')
    const { stdout: dirs } = await run('find', [path.join(app, 'node_modules'), '-type', 'd', '-path', '*/prebuilds/*', '-prune'])
    expect([...new Set(dirs.trim().split('\n').map((d) => path.basename(d)))]).toEqual([`${process.platform}-${process.arch}`])
    expect(existsSync(path.join(app, 'src'))).toBe(false)
    // build-app.sh refuses to write over a previous build
    await expect(run('/bin/sh', [path.join(context, 'docker', 'build-app.sh'), app], { cwd: context })).rejects.toMatchObject({ code: 2 })
  }, 240_000)
})

describe('shell scripts and the systemd unit', () => {
  const harness = useHarness()

  it('shellcheck finds nothing in docker/*.sh (POSIX sh)', async () => {
    const scripts = (await fs.readdir(dockerDir)).filter((f) => f.endsWith('.sh')).map((f) => path.join(dockerDir, f))
    expect(scripts.length).toBeGreaterThanOrEqual(3)
    const result = await run('shellcheck', ['--shell=sh', ...scripts]).then(
      () => '',
      (err: { stdout: string }) => err.stdout
    )
    expect(result).toBe('')
  })

  it('systemd-analyze verify accepts docker/systemd/sync-agent.service (ExecStart pointed at this checkout)', async () => {
    const dir = await harness.tmpDir()
    const unit = readFileSync(path.join(dockerDir, 'systemd', 'sync-agent.service'), 'utf8')
    expect(unit).toMatch(/^NoNewPrivileges=yes$/m)
    expect(unit).toMatch(/^ProtectSystem=strict$/m)
    expect(unit).toMatch(/^ReadWritePaths=\/var\/www\/html\/wp-content$/m)
    expect(unit).toMatch(/^StateDirectory=sync-agent$/m)
    expect(unit).toMatch(/^Environment=SYNC_AGENT_FOLDER=\/var\/www\/html\/wp-content$/m)
    const local = unit.replace(/^ExecStart=\/usr\/local\/bin\/sync-agent /m, `ExecStart=${path.join(repoRoot, 'packages', 'sync-agent', 'bin', 'sync-agent.js')} `)
    expect(local).not.toBe(unit)
    await fs.writeFile(path.join(dir, 'sync-agent.service'), local)
    const { stdout, stderr } = await run('systemd-analyze', ['verify', path.join(dir, 'sync-agent.service')])
    expect(stdout + stderr).toBe('')
  })
})
