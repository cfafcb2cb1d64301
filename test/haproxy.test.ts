import { describe, expect, it } from 'vitest'
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { request as httpsRequest } from 'node:https'
import fs from 'node:fs/promises'
import path from 'node:path'
import { newSecret } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { freePorts } from './helpers/ports.ts'
import { repoRoot } from './helpers/paths.ts'
import { sha256 } from './helpers/tree.ts'
import { until } from './helpers/until.ts'
import { writeWpCorpus } from './helpers/wp-corpus.ts'

/**
 * The real topology in small: HAProxy (Debian's, with docker/haproxy.cfg as shipped), two
 * web servers serving the two folders like WordPress would (a page that needs the theme,
 * a blank page when the theme is missing), and two agents answering agent-check. A fresh B
 * must get no visitor before its themes are complete, sticky cookie or not.
 */
const THEME_FILES = ['themes/theme0/style.css', 'themes/theme0/f0.php', 'plugins/plugin0/inc/f0.php']
const HEALTH_PATH = '/wp-login.php'

interface Hit {
  at: number
  path: string
}

/** A stand-in for WordPress: renders a page from the theme files, blank if one is missing (PHP's white page). */
function fakeWordPress(name: string, folder: string, hits: Hit[]): Server {
  return createServer((req, res) => {
    const url = req.url ?? '/'
    if (url !== HEALTH_PATH) hits.push({ at: Date.now(), path: url })
    res.setHeader('x-served-by', name)
    if (url === HEALTH_PATH) return void res.end('login')
    if (url.startsWith('/wp-content/')) {
      fs.readFile(path.join(folder, decodeURIComponent(url.slice('/wp-content/'.length)))).then(
        (data) => res.end(data),
        () => {
          res.statusCode = 404
          res.end()
        }
      )
      return
    }
    Promise.all(THEME_FILES.map((f) => fs.readFile(path.join(folder, f)))).then(
      (parts) => res.end(`<html><!-- theme ${sha256(Buffer.concat(parts))} --><body>page</body></html>`),
      () => res.end('') // the blank white page
    )
  })
}

interface Reply {
  status: number
  servedBy: string | null
  body: Buffer
  setCookie: string | null
}

function get(port: number, urlPath: string, cookie: string | null): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: urlPath, method: 'GET', rejectUnauthorized: false, headers: cookie ? { cookie } : {}, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, servedBy: (res.headers['x-served-by'] as string | undefined) ?? null, body: Buffer.concat(chunks), setCookie: res.headers['set-cookie']?.[0] ?? null })
        )
      }
    )
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve()))
}

describe('HAProxy with agent-check (docker/haproxy.cfg)', () => {
  const harness = useHarness()

  it('sends a fresh B no request before its themes are complete, not even with B\'s sticky cookie, and takes B in once ready', async () => {
    const tmp = await harness.tmpDir()
    const secret = await newSecret()
    const [wp1Port, wp2Port, check1, check2, httpPort, httpsPort] = (await freePorts(6)) as [number, number, number, number, number, number]

    const a = await harness.agent({ name: 'a', secret, env: { SYNC_AGENT_AGENT_CHECK: `127.0.0.1:${check1}` } })
    const corpus = await writeWpCorpus(a.folder, { months: 24, uploadsPerMonth: 5 })
    const total = corpus.critical.length + corpus.uploads.length + corpus.other.length
    await a.start()
    await until(async () => (await a.status()).files === total, { timeoutMs: 90_000, intervalMs: 500, message: 'A has indexed its files' })
    const expectedPage = `<!-- theme ${sha256(Buffer.concat(await Promise.all(THEME_FILES.map((f) => fs.readFile(path.join(a.folder, f))))))} -->`
    const expectedCss = await fs.readFile(path.join(a.folder, THEME_FILES[0]!))

    const b = await harness.agent({ name: 'b', secret, peers: [a.address], env: { SYNC_AGENT_AGENT_CHECK: `127.0.0.1:${check2}` } })
    const hits1: Hit[] = []
    const hits2: Hit[] = []
    const wp1 = fakeWordPress('wp1', a.folder, hits1)
    const wp2 = fakeWordPress('wp2', b.folder, hits2)
    await listen(wp1, wp1Port)
    await listen(wp2, wp2Port)

    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(tmp, 'key.pem'), '-out', path.join(tmp, 'cert.pem'), '-days', '2', '-subj', '/CN=localhost'], { stdio: 'ignore' })
    await fs.writeFile(path.join(tmp, 'site.pem'), Buffer.concat([await fs.readFile(path.join(tmp, 'cert.pem')), await fs.readFile(path.join(tmp, 'key.pem'))]))
    const env = {
      ...process.env,
      HAPROXY_STATS_SOCKET: path.join(tmp, 'haproxy.sock'),
      HAPROXY_HTTP_BIND: `127.0.0.1:${httpPort}`,
      HAPROXY_HTTPS_BIND: `127.0.0.1:${httpsPort}`,
      HAPROXY_CERT: path.join(tmp, 'site.pem'),
      WP_HEALTH_PATH: HEALTH_PATH,
      WP_AGENT_PORT: '0', // each server's agent-port below overrides it
      WP1_ADDR: `127.0.0.1:${wp1Port}`,
      WP2_ADDR: `127.0.0.1:${wp2Port}`,
      WP1_AGENT_HOST: '127.0.0.1',
      WP2_AGENT_HOST: '127.0.0.1'
    }
    // the shipped file has one agent port for both servers (one per host in production);
    // on one loopback host the two agents need two ports: only that line is changed
    const shipped = await fs.readFile(path.join(repoRoot, 'docker/haproxy.cfg'), 'utf8')
    const cfg = shipped
      .replace(/agent-port "\$\{WP_AGENT_PORT\}" /, '')
      .replace(/(server wp1 .*)$/m, `$1 agent-port ${check1}`)
      .replace(/(server wp2 .*)$/m, `$1 agent-port ${check2}`)
    expect(cfg).not.toBe(shipped)
    await fs.writeFile(path.join(tmp, 'haproxy.cfg'), cfg)
    execFileSync('haproxy', ['-c', '-q', '-f', path.join(repoRoot, 'docker/haproxy.cfg')], { env: { ...env, WP_AGENT_PORT: String(check1) } })
    const haproxy: ChildProcess = spawn('haproxy', ['-db', '-f', path.join(tmp, 'haproxy.cfg')], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let haproxyLog = ''
    haproxy.stdout?.on('data', (c: Buffer) => (haproxyLog += c.toString()))
    haproxy.stderr?.on('data', (c: Buffer) => (haproxyLog += c.toString()))
    try {
      // A's server comes in (its agent is ready: A is the first node, nothing to wait for)
      await until(async () => (await get(httpsPort, '/', null)).servedBy === 'wp1', { timeoutMs: 30_000, message: 'HAProxy serves through wp1' })

      await b.start()
      const replies: Array<{ at: number; kind: string; reply: Reply }> = []
      const check = (kind: string, reply: Reply) => {
        replies.push({ at: Date.now(), kind, reply })
        expect(reply.status, `${kind}: status`).toBe(200)
        if (kind === 'css') expect(reply.body.equals(expectedCss), `${kind}: the theme file via ${reply.servedBy}`).toBe(true)
        else expect(reply.body.toString(), `${kind}: a page, not a blank one, via ${reply.servedBy}`).toContain(expectedPage)
      }
      // visitors keep coming while B syncs: new ones, and ones pinned to B by its cookie
      const servedByB = await until(
        async () => {
          const fresh = await get(httpsPort, '/', null)
          check('new visitor', fresh)
          const pinned = await get(httpsPort, '/', 'SERVERID=wp2')
          check('sticky to wp2', pinned)
          const css = await get(httpsPort, '/wp-content/' + THEME_FILES[0], 'SERVERID=wp2')
          check('css', css)
          return pinned.servedBy === 'wp2' && css.servedBy === 'wp2' ? pinned : undefined
        },
        { timeoutMs: 150_000, intervalMs: 20, message: 'B is taken into the pool and serves its sticky visitors' }
      )
      expect(servedByB.servedBy).toBe('wp2')
      const status = await b.status()
      const readyAt = status.readyAt as number
      expect(status.ready).toBe(true)
      // the not-ready window was exercised: visitors pinned to B were served by A meanwhile
      const redispatched = replies.filter((r) => r.kind === 'sticky to wp2' && r.reply.servedBy === 'wp1')
      expect(redispatched.length, 'sticky requests redispatched to wp1 while B was not ready').toBeGreaterThan(3)
      // and B's web server saw no visitor before B's agent said ready
      const early = hits2.filter((h) => h.at < readyAt)
      expect(early, `requests reaching wp2 before B was ready at ${new Date(readyAt).toISOString()}`).toEqual([])
      expect(hits2.length).toBeGreaterThan(0)
      // B was still fetching uploads when it joined
      const uploads = (status.classes as Array<{ name: string; complete: boolean }>).find((c) => c.name === 'uploads')
      b.note(`B joined; uploads complete=${uploads?.complete}; ${redispatched.length} sticky requests went to wp1 meanwhile`)
    } catch (err) {
      b.note(`haproxy log:\n${haproxyLog.slice(-4000)}`)
      throw err
    } finally {
      haproxy.kill('SIGTERM')
      await new Promise<void>((resolve) => (haproxy.exitCode !== null ? resolve() : haproxy.once('exit', () => resolve())))
      const closing = Promise.all([new Promise((r) => wp1.close(r)), new Promise((r) => wp2.close(r))])
      wp1.closeAllConnections()
      wp2.closeAllConnections()
      await closing
    }
  })
})
