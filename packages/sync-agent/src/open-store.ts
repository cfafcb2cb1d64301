import { join } from 'node:path'
import Corestore, { type KeyPair } from 'corestore'
import CoreStorage from 'hypercore-storage'
import { SyncError } from '@sync-agent/shared'
import { prepareDataDir } from './data-dir.js'

/** RocksDB's default 64 MiB memtables cost more memory than the whole agent needs. */
const WRITE_BUFFER_BYTES = 8 * 1024 * 1024

/** Prepares the data dir (0700, format stamp), opens its Corestore and the device key pair. */
export async function openStore(dataDir: string): Promise<{ store: Corestore; keyPair: KeyPair }> {
  await prepareDataDir(dataDir)
  const store = new Corestore(new CoreStorage(join(dataDir, 'store'), { writeBufferSize: WRITE_BUFFER_BYTES }))
  try {
    await store.ready()
  } catch (err) {
    throw new SyncError('E_DATA_DIR', `cannot open the store in ${dataDir}: ${(err as Error).message} (is another agent using this data dir?)`, { cause: err })
  }
  return { store, keyPair: await store.createKeyPair('sync-agent/device') }
}
