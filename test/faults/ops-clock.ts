/**
 * The fault schedule's clock: counts the workload's operations (on all nodes together), so a
 * fault starts after, and lasts for, a seeded number of operations rather than a number of
 * milliseconds. A partition then always overlaps the same amount of work, however loaded the
 * machine is (under load a timed hold could see no write at all), and a seed replays the same
 * schedule relative to the work.
 */
export class OpsClock {
  private done = 0
  private ended = false
  private readonly waiters = new Set<{ target: number; resolve: (reason: 'ops' | 'ended') => void }>()

  get ops(): number {
    return this.done
  }

  get finished(): boolean {
    return this.ended
  }

  /** one more workload operation (a failed one counts: it was attempted) */
  tick(): void {
    this.done++
    for (const w of this.waiters) {
      if (this.done >= w.target) {
        this.waiters.delete(w)
        w.resolve('ops')
      }
    }
  }

  /** the workload is over: every wait returns */
  end(): void {
    this.ended = true
    for (const w of this.waiters) w.resolve('ended')
    this.waiters.clear()
  }

  /**
   * Resolves once `count` more operations are done, or the workload ended. Throws after
   * `deadlineMs` without that progress: a workload that stops moving is a broken round.
   */
  after(count: number, deadlineMs: number): Promise<'ops' | 'ended'> {
    if (this.ended) return Promise.resolve('ended')
    if (count <= 0) return Promise.resolve('ops')
    return new Promise((resolve, reject) => {
      const at = this.done
      const timer = setTimeout(() => {
        this.waiters.delete(waiter)
        reject(new Error(`the workload did ${this.done - at} of ${count} operations in ${deadlineMs} ms`))
      }, deadlineMs)
      const waiter = {
        target: at + count,
        resolve: (reason: 'ops' | 'ended') => {
          clearTimeout(timer)
          resolve(reason)
        }
      }
      this.waiters.add(waiter)
    })
  }
}
