import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { stalledAfterCheck } from '../src/event-loop-watchdog.ts'
import { GiveUpError, stays, until } from '../../../test/helpers/until.ts'

// needs `pnpm build` (the test command runs it first): the watchdog runs in a real process
const dist = join(import.meta.dirname, '..', 'dist')
const STALL_MS = 2_500

/**
 * A process with the watchdog (stall 2.5 s, beats every 100 ms) that prints a tick every
 * 100 ms, then, 300 ms in, does what `mode` says: spin in a loop, spin in a loop of promises,
 * close the watchdog, or nothing.
 */
const SCRIPT = `
import { EventLoopWatchdog } from ${JSON.stringify(pathToFileURL(join(dist, 'event-loop-watchdog.js')).href)}
import { createLogger } from ${JSON.stringify(pathToFileURL(join(dist, 'log.js')).href)}
const watchdog = new EventLoopWatchdog({ stallMs: ${STALL_MS}, beatMs: 100, log: createLogger('debug'), stallFile: process.argv[2] })
watchdog.ready()
let ticks = 0
const tick = setInterval(() => process.stdout.write('tick ' + ++ticks + '\\n'), 100)
function spinForever() { for (;;) {} }
async function step() { await null }
async function spinPromises() { for (;;) await step() }
const mode = process.argv[1]
if (mode === 'spin') setTimeout(spinForever, 300)
if (mode === 'promises') setTimeout(spinPromises, 300)
if (mode === 'close') setTimeout(async () => { clearInterval(tick); await watchdog.close(); process.stdout.write('closed\\n') }, 300)
`

interface Run {
  child: ChildProcess
  out: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Runs the script in `mode` for `test`, and kills it after, whatever happened. */
async function withRun(mode: string, test: (r: Run) => Promise<void>, nodeFlags: string[] = [], stallFile?: string): Promise<void> {
  const r = run(mode, nodeFlags, stallFile)
  try {
    await test(r)
  } finally {
    if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL')
  }
}

function run(mode: string, nodeFlags: string[] = [], stallFile?: string): Run {
  const child = spawn(process.execPath, [...nodeFlags, '--input-type=module', '-e', SCRIPT, mode, ...(stallFile ? [stallFile] : [])], { stdio: ['ignore', 'pipe', 'ignore'] })
  let text = ''
  child.stdout!.on('data', (c: Buffer) => (text += c.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
  return { child, out: () => text, exited }
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting until ${what}`)), ms)))
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

const ended = (r: Run) => r.child.exitCode !== null || r.child.signalCode !== null
const stallLines = (r: Run) => r.out().split('\n').filter((l) => l.includes('"E_LOOP_STALLED"'))

/** Resolves once the process has printed tick `n` (it is alive and its loop turns). */
async function ticks(r: Run, n: number): Promise<void> {
  await until(
    () => {
      if (ended(r)) throw new GiveUpError(`the process ended before tick ${n}:\n${r.out().slice(-2000)}`)
      return r.out().includes(`tick ${n}\n`)
    },
    { timeoutMs: 30_000, intervalMs: 20, message: `tick ${n}` }
  )
}

/** The samples of the watchdog's last fatal line. */
function samplesOf(out: string): string[] {
  const lines = out.split('\n').filter((l) => l.includes('"E_LOOP_STALLED"'))
  expect(lines, out.slice(-2000)).toHaveLength(2)
  expect(JSON.parse(lines[0] as string)).toMatchObject({ level: 'fatal', c: 'watchdog', stalledS: expect.any(Number) })
  return (JSON.parse(lines[1] as string) as { samples: string[] }).samples
}

describe('stalledAfterCheck', () => {
  it('adds the time since the last check while the main thread has not beaten; a beat starts again from 0', () => {
    expect(stalledAfterCheck(0, 1_000, false, 1_000)).toBe(1_000)
    expect(stalledAfterCheck(59_000, 1_003, false, 1_000)).toBe(60_003)
    expect(stalledAfterCheck(59_000, 1_000, true, 1_000)).toBe(0)
  })

  it('counts a gap far over the check interval (the process was stopped, the watcher too) as two checks', () => {
    // woken after 10 minutes of SIGSTOP, before the main thread's first beat: not a stall of 10 minutes
    expect(stalledAfterCheck(0, 600_000, false, 1_000)).toBe(2_000)
    expect(stalledAfterCheck(3_000, 600_000, false, 1_000)).toBe(5_000)
  })
})

// the processes are independent: side by side
describe.concurrent('EventLoopWatchdog', () => {
  it('ends a process whose loop spins, after logging where it spins (five samples), and leaves them for the next run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sa-watchdog-'))
    const stallFile = join(dir, 'last-stall.json')
    try {
      await withRun(
        'spin',
        async (r) => {
          const startedAt = Date.now()
          const exit = await within(r.exited, 20_000, 'the process ends')
          expect(exit.signal).toBe('SIGKILL')
          // not before the stall: 300 ms to the loop, then 2.5 s without a beat
          expect(Date.now() - startedAt).toBeGreaterThanOrEqual(STALL_MS + 300)
          const samples = samplesOf(r.out())
          expect(samples).toHaveLength(5)
          for (const s of samples) expect(s).toMatch(/^spinForever /)
          // the same samples, for the next run to report (previous-stall.ts)
          expect(JSON.parse(await readFile(stallFile, 'utf8'))).toMatchObject({ at: expect.any(String), stalledS: expect.any(Number), samples })
        },
        [],
        stallFile
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 30_000)

  it('names the code of a loop of promises (which never lets a timer run either)', () =>
    withRun('promises', async (r) => {
      const exit = await within(r.exited, 20_000, 'the process ends')
      expect(exit.signal).toBe('SIGKILL')
      const samples = samplesOf(r.out())
      expect(samples.length).toBeGreaterThan(0)
      // a sample lands in the loop's code or in the microtask runner between two turns of it
      expect(samples.some((s) => /^(spinPromises|step) /.test(s)), samples.join('\n')).toBe(true)
    }), 30_000)

  // (a process stopped by SIGSTOP is pinned by the stalledAfterCheck tests above: a real
  // SIGSTOP cannot force the watcher to look before the main thread beats, so such a test
  // passed without the guard too)
  it('leaves a process alone whose loop turns', () =>
    withRun('idle', async (r) => {
      // more than the stall, the loop turning
      await ticks(r, 35)
      expect(r.out()).not.toContain('E_LOOP_STALLED')
    }), 60_000)

  it('with a debugger able to attach (--inspect: a breakpoint may be what holds the loop), warns once and does not end the process', () =>
    withRun(
      'spin',
      async (r) => {
        await until(() => ended(r) || stallLines(r).length > 0, { timeoutMs: 20_000, intervalMs: 20, message: 'the watchdog says something' })
        const lines = stallLines(r)
        expect(lines).toHaveLength(1)
        expect(JSON.parse(lines[0] as string)).toMatchObject({ level: 'warn', c: 'watchdog', msg: expect.stringMatching(/debugger/) })
        // without the debugger it would be killed right after that line: watched for twice the stall
        await stays(() => !ended(r) && stallLines(r).length === 1, { durationMs: 2 * STALL_MS, intervalMs: 50, message: 'the process runs on, warned once' })
      },
      ['--inspect=127.0.0.1:0']
    ), 30_000)

  it('close() ends the watcher: the process then exits on its own', () =>
    withRun('close', async (r) => {
      const exit = await within(r.exited, 10_000, 'the process exits')
      expect(exit).toEqual({ code: 0, signal: null })
      expect(r.out()).toContain('closed\n')
      expect(r.out()).not.toContain('E_LOOP_STALLED')
    }), 20_000)
})
