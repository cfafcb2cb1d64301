import { pipeline } from 'node:stream'
import { afterEach } from 'vitest'
import Corestore from 'corestore'
import Hyperdrive from 'hyperdrive'
import { useTempDirs } from './temp-dirs.js'

/**
 * Hyperdrives each in its own Corestore (a temp dir), and replication between two of them, for
 * tests of member drives: `open()` a writer, `open(writer.key)` a replica. Streams and stores
 * are closed after each test, and `also` runs first (what the test built on them).
 */
export function useDrives(prefix: string): {
  open(key?: Buffer | null): Promise<Hyperdrive>
  /** replicates the two drives' stores until the returned stop (or the test's end) */
  replicate(a: Hyperdrive, b: Hyperdrive): () => void
  /** runs after the test, before the stores close */
  also(cleanup: () => Promise<void> | void): void
} {
  const tempDir = useTempDirs(prefix)
  const cleanups: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })
  return {
    async open(key = null) {
      const store = new Corestore(tempDir())
      const drive = new Hyperdrive(store.session(), key)
      await drive.ready()
      cleanups.push(() => store.close())
      return drive
    },
    replicate(a, b) {
      const x = a.corestore.replicate(true)
      const y = b.corestore.replicate(false)
      pipeline(x, y, x, () => undefined)
      const stop = () => {
        x.destroy()
        y.destroy()
      }
      cleanups.push(stop)
      return stop
    },
    also(cleanup) {
      cleanups.push(cleanup)
    }
  }
}
