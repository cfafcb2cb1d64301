import Hyperdrive from 'hyperdrive'
import { describe, expect, it } from 'vitest'
import { INDEX_NODE_CACHE, openStore } from '../src/open-store.js'
import { useTempDirs } from './helpers/temp-dirs.js'

const tempDir = useTempDirs('open-store-')

describe('openStore', () => {
  it('bounds the index nodes kept in memory across a drive and its checkouts', async () => {
    const dir = tempDir()
    const { store } = await openStore(dir)
    const drive = new Hyperdrive(store.namespace('t'))
    try {
      await drive.ready()
      // three batches: a checkout is consistent only at a batch's end
      const versions: number[] = []
      for (let b = 0; b < 3; b++) {
        const batch = drive.batch()
        for (let i = 0; i < INDEX_NODE_CACHE; i++) await batch.putEntry(`/d${i % 7}/b${b}-${i}`, { metadata: { i } })
        await batch.flush()
        versions.push(drive.version)
      }
      // each checkout is a Hyperbee of its own: without the store's shared bound every one
      // would keep up to 65,536 nodes
      let listed = 0
      for (const version of versions) {
        const checkout = drive.checkout(version)
        for await (const entry of checkout.list('/')) if (entry.key) listed++
        await checkout.close()
      }
      for await (const item of drive.diff(1)) if (item.left) listed++
      expect(listed).toBe(9 * INDEX_NODE_CACHE)
      const cache = store.globalCache
      expect(cache).not.toBeNull()
      expect(cache!.globalSize).toBeGreaterThan(INDEX_NODE_CACHE / 2)
      expect(cache!.globalSize).toBeLessThanOrEqual(INDEX_NODE_CACHE)
    } finally {
      await drive.close()
      await store.close()
    }
  }, 60_000)
})
