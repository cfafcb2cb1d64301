import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

/**
 * The fault suite's network: one network namespace per node, each joined by a veth pair to a
 * switch namespace that holds two bridges. All ports sit on `br0`; a split moves one group's
 * ports to `br1` (two islands); isolating a node takes its port down. Nothing is created in
 * the host's own namespace, and every name starts with `RUN_PREFIX` + the runner's pid, so
 * leftovers of a crashed run are recognisable (and removed by `removeLeftoverNamespaces`).
 */
const exec = promisify(execFile)

export const RUN_PREFIX = 'safault-'
const SUBNET = '10.77.0.'

export async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await exec('ip', args, { timeout: 10_000 })
    return stdout
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(`ip ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`)
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Deletes namespaces of earlier runs whose runner process is gone (never a live run's). */
export async function removeLeftoverNamespaces(): Promise<string[]> {
  const removed: string[] = []
  for (const line of (await ip('netns', 'list')).split('\n')) {
    const name = line.split(' ')[0] ?? ''
    const m = new RegExp(`^${RUN_PREFIX}(\\d+)-`).exec(name)
    if (!m || isAlive(Number(m[1]))) continue
    await ip('netns', 'del', name).catch(() => undefined)
    removed.push(name)
  }
  return removed
}

export class ClusterNet {
  readonly switchNs: string
  readonly nodeNs: string[]
  private created: string[] = []

  constructor(
    readonly nodes: number,
    runTag: string
  ) {
    const base = `${RUN_PREFIX}${process.pid}-${runTag}`
    this.switchNs = `${base}-sw`
    this.nodeNs = Array.from({ length: nodes }, (_, i) => `${base}-n${i}`)
  }

  address(i: number): string {
    return `${SUBNET}${i + 10}`
  }

  private port(i: number): string {
    return `p${i}`
  }

  async up(): Promise<void> {
    await ip('netns', 'add', this.switchNs)
    this.created.push(this.switchNs)
    for (const br of ['br0', 'br1']) {
      await ip('-n', this.switchNs, 'link', 'add', br, 'type', 'bridge')
      await ip('-n', this.switchNs, 'link', 'set', br, 'up')
    }
    for (let i = 0; i < this.nodes; i++) {
      const ns = this.nodeNs[i] as string
      await ip('netns', 'add', ns)
      this.created.push(ns)
      await ip('-n', this.switchNs, 'link', 'add', this.port(i), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
      await ip('-n', this.switchNs, 'link', 'set', this.port(i), 'master', 'br0', 'up')
      await ip('-n', ns, 'addr', 'add', `${this.address(i)}/24`, 'dev', 'eth0')
      await ip('-n', ns, 'link', 'set', 'eth0', 'up')
      await ip('-n', ns, 'link', 'set', 'lo', 'up')
    }
  }

  /** Cuts node i off from everyone. */
  async isolate(i: number): Promise<void> {
    await ip('-n', this.switchNs, 'link', 'set', this.port(i), 'down')
  }

  /** Two islands: `group` on one bridge, everyone else on the other. */
  async split(group: number[]): Promise<void> {
    for (const i of group) await ip('-n', this.switchNs, 'link', 'set', this.port(i), 'master', 'br1')
  }

  /** Every port up and on the same bridge. */
  async heal(): Promise<void> {
    for (let i = 0; i < this.nodes; i++) {
      await ip('-n', this.switchNs, 'link', 'set', this.port(i), 'master', 'br0', 'up')
    }
  }

  async down(): Promise<void> {
    for (const ns of this.created.reverse()) await ip('netns', 'del', ns).catch(() => undefined)
    this.created = []
  }
}
