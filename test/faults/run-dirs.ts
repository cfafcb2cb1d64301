import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { isAlive, RUN_PREFIX } from './cluster-net.ts'

/**
 * A round's directories (`$TMPDIR/safault-<pid>-<tag>/`), the small tmpfs that holds the
 * disk-full node's folder, and the record of agent pids, so that a crashed run's leftovers
 * (mounts, agents, dirs) can be found and removed by the next run.
 */
const exec = promisify(execFile)
const PIDS_FILE = 'agent-pids'

export function runDirOf(tag: string): string {
  return path.join(os.tmpdir(), `${RUN_PREFIX}${process.pid}-${tag}`)
}

async function mountsUnder(prefix: string): Promise<string[]> {
  const text = await fs.readFile('/proc/mounts', 'utf8')
  return text
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(prefix))
    .sort((a, b) => b.length - a.length)
}

export async function mountTmpfs(dir: string, sizeBytes: number): Promise<void> {
  await fs.mkdir(dir, { recursive: true })
  await exec('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', dir])
}

/** Fills the file system of `folder` with an ignored file (`*.tmp`) until not one byte fits. */
export async function fillDisk(folder: string): Promise<string> {
  const file = path.join(folder, `.fill-${Date.now()}.tmp`)
  const fh = await fs.open(file, 'w')
  try {
    for (const size of [1024 * 1024, 4096, 1]) {
      const chunk = Buffer.alloc(size, 7)
      try {
        for (;;) await fh.write(chunk)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
      }
    }
  } finally {
    await fh.close()
  }
  return file
}

export async function unmount(dir: string): Promise<void> {
  await exec('umount', ['-l', dir]).catch(() => undefined)
}

export async function recordPid(runDir: string, pid: number): Promise<void> {
  await fs.appendFile(path.join(runDir, PIDS_FILE), `${pid}\n`)
}

/** SIGKILLs the recorded agents of `runDir` that still run with that dir on their command line. */
async function killRecordedAgents(runDir: string): Promise<void> {
  let text = ''
  try {
    text = await fs.readFile(path.join(runDir, PIDS_FILE), 'utf8')
  } catch {
    return
  }
  for (const pid of text.split('\n').filter(Boolean).map(Number)) {
    if (!isAlive(pid)) continue
    const env = await fs.readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')
    if (env.includes(runDir)) process.kill(pid, 'SIGKILL')
  }
}

/** Removes one round's mounts and dirs (its agents must be stopped already, or are killed here). */
export async function removeRunDir(runDir: string): Promise<void> {
  await killRecordedAgents(runDir)
  for (const m of await mountsUnder(runDir + '/')) await unmount(m)
  await fs.rm(runDir, { recursive: true, force: true })
}

/** Leftovers of runs whose runner is gone: agents, mounts, dirs. */
export async function removeLeftoverDirs(): Promise<string[]> {
  const removed: string[] = []
  for (const name of await fs.readdir(os.tmpdir())) {
    const m = new RegExp(`^${RUN_PREFIX}(\\d+)-`).exec(name)
    if (!m || isAlive(Number(m[1]))) continue
    const dir = path.join(os.tmpdir(), name)
    await removeRunDir(dir)
    removed.push(dir)
  }
  return removed
}
