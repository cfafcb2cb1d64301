import { describe, expect, it } from 'vitest'
import { deriveFolderKeys, parseSecret } from '../../packages/shared/dist/index.js'
import { openStore } from '../../packages/sync-agent/dist/open-store.js'
import { requireFromAgent } from '../helpers/paths.ts'
import { newSecret } from '../helpers/cli.ts'
import { writeFiles } from '../helpers/files.ts'
import { useHarness } from '../helpers/harness.ts'
import { until } from '../helpers/until.ts'
import { unheldOwnBlocks } from './own-drive-blocks.ts'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the Holepunch modules ship no types
const Hyperdrive: any = requireFromAgent('hyperdrive')

/** Clears block `offset` of the blob `path` names in the agent's own drive (the agent stopped). */
async function clearBlockOf(dataDir: string, secret: string, path: string, offset: number): Promise<number> {
  const { store } = await openStore(dataDir)
  try {
    const drive = new Hyperdrive(store.namespace('sync-agent/own'), null, { encryptionKey: deriveFolderKeys(parseSecret(secret)).contentKey })
    await drive.ready()
    const entry = await drive.entry(path)
    const blob = entry?.value.blob
    if (!blob || offset >= blob.blockLength) throw new Error(`${path} names no block ${offset}`)
    const blobs = await drive.getBlobs()
    const block = blob.blockOffset + offset
    await blobs.core.clear(block, block + 1)
    await drive.close()
    return block
  } finally {
    await store.close()
  }
}

/** The fault rounds' check of each node's data dir (own-drive-blocks.ts), on a real agent's. */
describe('unheldOwnBlocks', () => {
  const harness = useHarness()

  it('finds nothing in an intact data dir and names each entry whose blocks were cleared', async () => {
    const secret = await newSecret()
    const agent = await harness.agent({ name: 'a', secret, listen: false })
    const small = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`themes/t/f${i}.php`, `<?php // ${i}\n`.repeat(20)]))
    await writeFiles(agent.folder, { ...small, 'uploads/big.bin': Buffer.alloc(2.5 * 1024 * 1024, 7) })
    await agent.start()
    await until(async () => {
      const status = await agent.status()
      return status.inSync && status.files === 31
    }, { timeoutMs: 20_000, message: 'the agent published its 31 files' })
    expect(await agent.stop()).toEqual({ code: 0, signal: null })

    expect(await unheldOwnBlocks('a', agent.data, secret)).toEqual([])

    const big = await clearBlockOf(agent.data, secret, '/uploads/big.bin', 1)
    const packed = await clearBlockOf(agent.data, secret, '/themes/t/f3.php', 0)
    // one line per block: the big file's, and the packed one of the small files (all or most
    // of the 30: the scan stores them in one pack per flush)
    const problems = await unheldOwnBlocks('a', agent.data, secret)
    expect(problems).toHaveLength(2)
    expect(problems).toContain(`UNHELD: a's own drive names block ${big} (/uploads/big.bin), which its data dir no longer holds`)
    expect(problems).toContainEqual(expect.stringMatching(new RegExp(`^UNHELD: a's own drive names block ${packed} \\(/themes/t/f\\d+\\.php( and \\d+ more entries)?\\), which its data dir no longer holds$`)))
  })
})
