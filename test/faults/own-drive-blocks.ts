import { deriveFolderKeys, parseSecret } from '../../packages/shared/dist/index.js'
import { openStore } from '../../packages/sync-agent/dist/open-store.js'
import { requireFromAgent } from '../helpers/paths.ts'
import { namedBlocks, scanLiveEntries } from '../../packages/sync-agent/dist/replication/live-entries-scan.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the Holepunch modules ship no types
const Hyperdrive: any = requireFromAgent('hyperdrive')

/** How many unheld blocks are named one by one (the rest are counted). */
const MAX_LISTED = 10

/**
 * After a round, with its agent stopped: every block an entry of the node's own drive names is
 * still held in its data dir. Each agent frees the blocks of what it replaced or deleted
 * (OwnDriveWriter.release, the shared-block sweeper); one freed while an entry still names it
 * is content the node published and can no longer serve from its drive (a relay, a peer whose
 * folder changed since, a read of an older version). Converged folders do not show it: peers
 * mostly read from each other's folders. Problems read `UNHELD: n1 …` (the oracle's kinds).
 */
export async function unheldOwnBlocks(node: string, dataDir: string, secret: string): Promise<string[]> {
  const keys = deriveFolderKeys(parseSecret(secret))
  const { store } = await openStore(dataDir)
  /** unheld block → the paths of the entries naming it */
  const unheld = new Map<number, string[]>()
  try {
    const drive = new Hyperdrive(store.namespace('sync-agent/own'), null, { encryptionKey: keys.contentKey })
    await drive.ready()
    const blobs = await drive.getBlobs()
    const named: Array<{ path: string; start: number; end: number }> = []
    await scanLiveEntries(drive.core, drive.core.length, (value, key) => {
      const blob = namedBlocks(value)
      if (blob) named.push({ path: key.toString('utf8'), start: blob.blockOffset, end: blob.blockOffset + blob.blockLength })
    })
    const held = new Map<number, boolean>()
    for (const { path, start, end } of named) {
      for (let block = start; block < end; block++) {
        let has = held.get(block)
        if (has === undefined) held.set(block, (has = (await blobs.core.has(block)) as boolean))
        if (!has) unheld.set(block, [...(unheld.get(block) ?? []), path])
      }
    }
    await drive.close()
  } finally {
    await store.close()
  }
  const blocks = [...unheld.keys()].sort((x, y) => x - y)
  const problems = blocks.slice(0, MAX_LISTED).map((block) => {
    const paths = (unheld.get(block) as string[]).sort()
    return `UNHELD: ${node}'s own drive names block ${block} (${paths[0]}${paths.length > 1 ? ` and ${paths.length - 1} more entries` : ''}), which its data dir no longer holds`
  })
  if (blocks.length > MAX_LISTED) problems.push(`UNHELD: ${node}: ${blocks.length - MAX_LISTED} more blocks its own drive names are no longer held`)
  return problems
}
