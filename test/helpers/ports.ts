import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

/**
 * TCP ports for agents to listen on.
 *
 * Not from port 0: the kernel hands out the same ephemeral range (32768+ on Linux) for outgoing
 * connections, and a port found free and closed again could be taken by any process before the
 * agent binds it. Ports come instead from below that range, and each is claimed with a lock file
 * (`O_EXCL`, holding the claiming process's pid) before it is checked with a bind. The lock is
 * machine-wide, so two vitest workers, or two test runs at once (a CI run beside a developer's
 * run: seen in CI, where two runs' per-worker port slices overlapped), never hand out the same
 * port. A lock whose process is gone is taken over; a process's locks are removed when it exits.
 */
const FIRST = 20_000
const LAST = 32_000
const LOCK_DIR = path.join(os.tmpdir(), 'sync-agent-test-ports')

const held: string[] = []
let cursor = FIRST + Math.floor(Math.random() * (LAST - FIRST))

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Claims `port` for this process, machine-wide; false if a live process holds it. Exported for its test. */
export function claimPort(port: number): boolean {
  fs.mkdirSync(LOCK_DIR, { recursive: true })
  const file = path.join(LOCK_DIR, String(port))
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' })
      held.push(file)
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number.parseInt(fs.readFileSync(file, 'utf8') || 'NaN', 10)
      // a lock being written (empty for a moment) or held by a live process is not ours to take
      if (!Number.isInteger(owner) || alive(owner)) return false
      fs.rmSync(file, { force: true })
    }
  }
  return false
}

function releaseAll(): void {
  for (const file of held.splice(0)) fs.rmSync(file, { force: true })
}

let exitHookSet = false

export const portLockDir = LOCK_DIR

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen({ host: '0.0.0.0', port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/** `count` distinct ports, free at the moment of the call and claimed by no other live process. */
export async function freePorts(count: number): Promise<number[]> {
  if (!exitHookSet) {
    process.once('exit', releaseAll)
    exitHookSet = true
  }
  const out: number[] = []
  for (let tried = 0; out.length < count; tried++) {
    if (tried >= LAST - FIRST) throw new Error(`no free port left in ${FIRST}–${LAST - 1} (locks in ${LOCK_DIR})`)
    const port = cursor
    cursor = cursor + 1 >= LAST ? FIRST : cursor + 1
    if (!claimPort(port)) continue
    if (await isFree(port)) out.push(port)
  }
  return out
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1)
  if (port === undefined) throw new Error('no free port')
  return port
}
