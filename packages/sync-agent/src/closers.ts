import type { Logger } from './log.js'

/** What a daemon opened, closed in reverse order once; a failing close is logged, not fatal. */
export class Closers {
  private readonly list: Array<() => Promise<void>> = []
  private closing: Promise<void> | null = null

  add(close: () => Promise<void>): void {
    this.list.push(close)
  }

  closeAll(log: Logger): Promise<void> {
    this.closing ??= (async () => {
      for (const close of this.list.reverse()) {
        try {
          await close()
        } catch (err) {
          log.error({ err }, 'error while stopping')
        }
      }
      log.info('agent stopped')
    })()
    return this.closing
  }
}
