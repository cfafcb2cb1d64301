import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach } from 'vitest'
import { IndexStore } from '../../src/index-store.js'

/** Temp dirs for a test file, removed after each test: `const tempDir = useTempDirs('x-')`. */
export function useTempDirs(prefix: string): () => string {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    dirs.push(dir)
    return dir
  }
}

/**
 * A folder and an open index store (its data dir) in temp dirs for reconcile tests; the store
 * is closed and both are removed after each test.
 */
export function useFolderAndIndex(prefix: string): () => Promise<{ folder: string; index: IndexStore }> {
  const tempDir = useTempDirs(prefix)
  const open: IndexStore[] = []
  afterEach(async () => {
    for (const index of open.splice(0)) await index.close()
  })
  return async () => {
    const folder = tempDir()
    const index = new IndexStore(tempDir(), Buffer.alloc(32, 1))
    await index.ready()
    open.push(index)
    return { folder, index }
  }
}
