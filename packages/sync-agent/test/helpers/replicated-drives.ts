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
      const stop = replicateStores(a.corestore as Corestore, b.corestore as Corestore)
      cleanups.push(stop)
      return stop
    },
    also(cleanup) {
      cleanups.push(cleanup)
    }
  }
}

/**
 * Bare Corestores in temp dirs, for tests of Hypercore itself: `store()` opens one, `link(a, b)`
 * replicates two until the returned stop (or the test's end). All are closed after each test.
 */
export function useStores(prefix: string): { store(): Corestore; link(a: Corestore, b: Corestore): () => void } {
  const tempDir = useTempDirs(prefix)
  const stores: Corestore[] = []
  const stops: Array<() => void> = []
  afterEach(async () => {
    for (const stop of stops.splice(0)) stop()
    for (const s of stores.splice(0)) await s.close()
  })
  return {
    store() {
      const s = new Corestore(tempDir())
      stores.push(s)
      return s
    },
    link(a, b) {
      const stop = replicateStores(a, b)
      stops.push(stop)
      return stop
    }
  }
}

/** Replicates two stores over an in-memory pipe until the returned stop. */
function replicateStores(a: Corestore, b: Corestore): () => void {
  const x = a.replicate(true)
  const y = b.replicate(false)
  pipeline(x, y, x, () => undefined)
  return () => {
    x.destroy()
    y.destroy()
  }
}
