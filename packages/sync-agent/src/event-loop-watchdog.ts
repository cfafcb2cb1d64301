import inspector from 'node:inspector'
import { Worker } from 'node:worker_threads'
import type { Logger } from './log.js'

/**
 * Ends the process when its event loop has not turned for `stallMs`: an agent stuck in a loop
 * (fault suite seeds 11009 and 3125: the main thread running, the control socket, peers and
 * the folder left unanswered for good) syncs nothing until someone restarts it, and the
 * load balancer's agent-check gets no answer, which HAProxy does not count against the server.
 * Syncthing's deadlock detector does the same: panic, and let the monitor start it again. Here
 * systemd (`Restart=on-failure`) or Docker (`restart: unless-stopped`) does; a kill -9 at any
 * moment is safe (the agent resumes where it was).
 *
 * The main thread bumps a shared counter every second; a worker thread (~8 MiB RSS: its own
 * V8 isolate) watches it. Once stalled, the worker writes a fatal log line, takes a few stack
 * samples of the main thread through the inspector (`Debugger.pause` interrupts JavaScript
 * wherever it is; paused in node's microtask runner, it steps into the next function, the
 * code of a loop of promises; `process.report` on a signal waits for the loop, so it never
 * comes), logs them, and kills the process (SIGKILL: the main thread's handlers cannot run).
 * Time the whole process was stopped is not counted (stalledAfterCheck). Nor is a stall while
 * a debugger can be attached (`--inspect`, or SIGUSR1 since): a developer paused at a
 * breakpoint is warned about, not killed.
 */
export class EventLoopWatchdog {
  private worker: Worker | null = null
  private beat: ReturnType<typeof setInterval> | null = null

  /** `stallFile`: where the samples are written too, for the next run to report (previous-stall.ts) */
  constructor(private readonly opts: { stallMs: number; log: Logger; beatMs?: number; stallFile?: string }) {}

  ready(): void {
    const beatMs = this.opts.beatMs ?? BEAT_MS
    // [beats, a debugger can attach (1) or not (0)]
    const counter = new Int32Array(new SharedArrayBuffer(8))
    this.beat = setInterval(() => {
      Atomics.add(counter, 0, 1)
      Atomics.store(counter, 1, inspector.url() === undefined ? 0 : 1)
    }, beatMs)
    this.beat.unref()
    this.worker = new Worker(WATCHER_SOURCE, {
      eval: true,
      // not the parent's flags (a --require, --input-type=module): the source is CommonJS
      execArgv: [],
      workerData: { counter, stallMs: this.opts.stallMs, checkMs: beatMs, samples: SAMPLES, sampleGapMs: SAMPLE_GAP_MS, samplesMaxMs: SAMPLES_MAX_MS, stallFile: this.opts.stallFile ?? null },
      // it holds a few numbers: the least V8 gives
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 }
    })
    this.worker.unref()
    this.worker.on('error', (err) => this.opts.log.warn({ err }, 'the event-loop watchdog failed: the agent runs without it'))
    this.opts.log.debug({ stallS: this.opts.stallMs / 1000 }, 'event-loop watchdog on')
  }

  async close(): Promise<void> {
    if (this.beat) clearInterval(this.beat)
    this.beat = null
    const worker = this.worker
    this.worker = null
    await worker?.terminate()
  }
}

/**
 * The watcher's count of time the main thread has not beaten, after a check `sinceLastCheckMs`
 * after the one before (it runs in the worker: no references outside itself). A gap far over
 * `checkMs` is time the whole process was stopped (SIGSTOP, `docker pause`, a suspended VM),
 * not the main thread alone: on waking, the watcher may look before the main thread has had
 * its turn to beat, so such a gap counts as two checks.
 */
export function stalledAfterCheck(stalledMs: number, sinceLastCheckMs: number, beatMoved: boolean, checkMs: number): number {
  if (beatMoved) return 0
  return stalledMs + Math.min(sinceLastCheckMs, 2 * checkMs)
}

const BEAT_MS = 1_000
/** stack samples taken of a stalled main thread, this far apart, within this long in all */
const SAMPLES = 5
const SAMPLE_GAP_MS = 100
const SAMPLES_MAX_MS = 10_000

/**
 * The worker (CommonJS, evaluated: it works the same from the bundle and from dist/). Its log
 * lines have pino's shape (JSON, `level` by name) and go to fd 1 with a synchronous write: the
 * main thread's logger cannot write any more.
 */
const WATCHER_SOURCE = `
'use strict'
const { workerData } = require('node:worker_threads')
const fs = require('node:fs')
const inspector = require('node:inspector')
const { counter, stallMs, checkMs, samples, sampleGapMs, samplesMaxMs, stallFile } = workerData
const log = (fields, msg) => {
  const line = JSON.stringify({ level: 'fatal', ...fields, time: new Date().toISOString(), pid: process.pid, c: 'watchdog', msg })
  try { fs.writeSync(1, line + '\\n') } catch {}
}
const end = () => process.kill(process.pid, 'SIGKILL')
const MAX_STEPS = 50
// node's queue runners (their frames may have no url)
const RUNNERS = new Set(['runNextTicks', 'processTicksAndRejections', 'processTimers', 'listOnTimeout', 'processImmediate'])
const stalledAfterCheck = ${stalledAfterCheck.toString()}
let seen = Atomics.load(counter, 0)
let stalledMs = 0
let warned = false
let checkedAt = performance.now()
const timer = setInterval(() => {
  const now = performance.now()
  const beat = Atomics.load(counter, 0)
  stalledMs = stalledAfterCheck(stalledMs, now - checkedAt, beat !== seen, checkMs)
  if (beat !== seen) warned = false
  checkedAt = now
  seen = beat
  if (stalledMs < stallMs) return
  if (Atomics.load(counter, 1) === 1) {
    // most likely paused at a breakpoint: say so once per stall, and keep watching
    if (!warned) log({ level: 'warn', code: 'E_LOOP_STALLED', stalledS: Math.round(stalledMs / 1000) }, 'the event loop has not turned for ' + Math.round(stalledMs / 1000) + ' s, with a debugger able to attach (paused at a breakpoint?): not ending the agent')
    warned = true
    return
  }
  clearInterval(timer)
  log({ code: 'E_LOOP_STALLED', stalledS: Math.round(stalledMs / 1000) }, 'the event loop has not turned for ' + Math.round(stalledMs / 1000) + ' s: taking stack samples, then ending the agent so that its service manager starts it again')
  sample()
}, checkMs)

function sample () {
  const taken = []
  let done = false
  const finish = (note) => {
    if (done) return
    done = true
    log({ code: 'E_LOOP_STALLED', samples: taken, note }, 'where the main thread was (' + taken.length + ' samples); ending the agent')
    if (stallFile) {
      try {
        fs.writeFileSync(stallFile, JSON.stringify({ at: new Date().toISOString(), stalledS: Math.round(stalledMs / 1000), samples: taken, note }), { mode: 0o600 })
      } catch {}
    }
    end()
  }
  setTimeout(() => finish('the main thread did not pause in time (stuck outside JavaScript?)'), samplesMaxMs)
  let session
  try {
    session = new inspector.Session()
    session.connectToMainThread()
  } catch (err) {
    finish('no inspector: ' + err.message)
    return
  }
  // a frame's url is often empty: the script's comes with Debugger.enable
  const urls = new Map()
  session.on('Debugger.scriptParsed', (m) => urls.set(m.params.scriptId, m.params.url))
  const urlOf = (f) => f.url || urls.get(f.location.scriptId) || ''
  let steps = 0
  session.on('Debugger.paused', (m) => {
    const frames = m.params.callFrames
    // paused in node's own code (a loop of promises: between two of its microtasks, in the
    // queue's runner): step into the next function that runs, which is the loop's
    if (frames.length > 0 && (urlOf(frames[0]).startsWith('node:') || RUNNERS.has(frames[0].functionName)) && steps < MAX_STEPS) {
      steps++
      session.post('Debugger.stepInto')
      return
    }
    steps = 0
    taken.push(frames.slice(0, 12).map((f) => (f.functionName || '(anonymous)') + ' ' + urlOf(f).split('/').pop() + ':' + (f.location.lineNumber + 1) + ':' + (f.location.columnNumber + 1)).join(' < '))
    if (taken.length >= samples) return finish(undefined)
    session.post('Debugger.resume', () => setTimeout(() => session.post('Debugger.pause'), sampleGapMs))
  })
  session.post('Debugger.enable', (err) => {
    if (err) return finish('the debugger did not start: ' + err.message)
    session.post('Debugger.pause')
  })
}
`
