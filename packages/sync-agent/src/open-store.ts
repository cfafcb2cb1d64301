import { join } from 'node:path'
import Corestore, { type KeyPair } from 'corestore'
import CoreStorage from 'hypercore-storage'
import Rache from 'rache'
import { SyncError } from '@sync-agent/shared'
import { prepareDataDir } from './data-dir.js'

/** RocksDB's default 64 MiB memtables cost more memory than the whole agent needs. */
const WRITE_BUFFER_BYTES = 8 * 1024 * 1024

/**
 * Decoded index nodes kept in memory, for all drives and checkouts together. Without a shared
 * bound every Hyperbee (each drive, and each checkout a diff opens) keeps up to 65,536 nodes of
 * its own: a drive of a million entries held ~60 MiB of them, which V8 then sizes its heap by.
 */
export const INDEX_NODE_CACHE = 4_096

/** Prepares the data dir (0700, format stamp), opens its Corestore and the device key pair. */
export async function openStore(dataDir: string): Promise<{ store: Corestore; keyPair: KeyPair }> {
  await prepareDataDir(dataDir)
  const store = new Corestore(new CoreStorage(join(dataDir, 'store'), { writeBufferSize: WRITE_BUFFER_BYTES }), { globalCache: new Rache({ maxSize: INDEX_NODE_CACHE }) })
  try {
    await store.ready()
  } catch (err) {
    throw new SyncError('E_DATA_DIR', `cannot open the store in ${dataDir}: ${(err as Error).message} (is another agent using this data dir?)`, { cause: err })
  }
  return { store, keyPair: await store.createKeyPair('sync-agent/device') }
}

/**
 * RocksDB's operation counters (gets, read batches, puts, write batches) for the debug memory
 * log, or null where the storage does not expose them (they are rocksdb-native internals).
 */
export function storageCounters(store: Corestore): Record<string, number> | null {
  const stats = (store as unknown as { storage?: { db?: { _state?: { stats?: Record<string, unknown> } } } }).storage?.db?._state?.stats
  if (!stats) return null
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(stats)) if (typeof v === 'number') out[k] = v
  return out
}
