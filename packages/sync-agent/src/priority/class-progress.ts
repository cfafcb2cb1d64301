/**
 * Per priority class: what was applied since the agent started, and how fast, for status
 * (rate and ETA) and readiness. Rates are measured over a sliding window of recent samples.
 */
const WINDOW_MS = 10_000
const SAMPLE_MS = 500

interface Sample {
  at: number
  files: number
  bytes: number
}

export interface ClassRate {
  doneFiles: number
  doneBytes: number
  filesPerSecond: number
  bytesPerSecond: number
}

class ClassCounter {
  files = 0
  bytes = 0
  private readonly samples: Sample[] = []

  add(bytes: number, now: number): void {
    this.files++
    this.bytes += bytes
    const last = this.samples[this.samples.length - 1]
    if (last && now - last.at < SAMPLE_MS) {
      last.files = this.files
      last.bytes = this.bytes
    } else {
      this.samples.push({ at: now, files: this.files, bytes: this.bytes })
    }
    while (this.samples.length > 2 && now - (this.samples[0] as Sample).at > WINDOW_MS) this.samples.shift()
  }

  rate(now: number): ClassRate {
    const first = this.samples[0]
    let filesPerSecond = 0
    let bytesPerSecond = 0
    // no progress within the window: the rate is zero, not the last known one
    if (first && now - (this.samples[this.samples.length - 1] as Sample).at <= WINDOW_MS) {
      const base = this.samples.length > 1 ? first : { at: first.at - SAMPLE_MS, files: first.files - 1, bytes: 0 }
      const seconds = Math.max(0.5, (now - base.at) / 1000)
      filesPerSecond = (this.files - base.files) / seconds
      bytesPerSecond = (this.bytes - base.bytes) / seconds
    }
    return { doneFiles: this.files, doneBytes: this.bytes, filesPerSecond, bytesPerSecond }
  }
}

export class ClassProgress {
  private readonly counters: ClassCounter[]

  constructor(classCount: number, private readonly now: () => number = Date.now) {
    this.counters = Array.from({ length: classCount }, () => new ClassCounter())
  }

  applied(classIndex: number, bytes: number): void {
    this.counters[classIndex]?.add(bytes, this.now())
  }

  rate(classIndex: number): ClassRate {
    return this.counters[classIndex]?.rate(this.now()) ?? { doneFiles: 0, doneBytes: 0, filesPerSecond: 0, bytesPerSecond: 0 }
  }
}

/** Seconds until `pending` is done at the given rates; null when nothing moves. */
export function etaSeconds(pendingFiles: number, pendingBytes: number, rate: ClassRate): number | null {
  if (pendingFiles === 0) return 0
  const byFiles = rate.filesPerSecond > 0 ? pendingFiles / rate.filesPerSecond : null
  const byBytes = rate.bytesPerSecond > 0 && pendingBytes > 0 ? pendingBytes / rate.bytesPerSecond : null
  if (byFiles === null && byBytes === null) return null
  return Math.ceil(Math.max(byFiles ?? 0, byBytes ?? 0))
}
