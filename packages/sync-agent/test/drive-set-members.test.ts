import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { deriveFolderKeys, newSecret, parseSecret } from '@sync-agent/shared'
import { createLogger } from '../src/log.js'
import { useTempDirs } from './helpers/temp-dirs.js'
import { openStore } from '../src/open-store.js'
import { DriveSet } from '../src/replication/drive-set.js'
import { signMember } from '../src/replication/member.js'

const tempDir = useTempDirs('drive-set-')

// fault suite seeds 825, 830, 912, 950: the member list was saved only once every drive heard
// of had opened, and the same members heard from several peers at once were opened twice;
// the save never came, and a restarted node started with no member drives at all
describe('DriveSet members', () => {
  it('each is opened once when several peers name it at once, and all are saved', async () => {
    const dir = tempDir()
    const keys = deriveFolderKeys(parseSecret(newSecret()))
    const { store, keyPair } = await openStore(dir)
    const set = new DriveSet(store, keys, keyPair.publicKey, dir, createLogger('silent'))
    try {
      await set.ready()
      const members = [1, 2, 3].map(() => signMember(keys, randomBytes(32), randomBytes(32))!)
      const [a, b] = await Promise.all([set.addMembers(members, 'peer a'), set.addMembers(members, 'peer b')])
      expect(a.added + b.added).toBe(3)
      expect(set.all().filter((d) => !d.isOwn)).toHaveLength(3)
      const onDisk = JSON.parse(readFileSync(join(dir, 'members.json'), 'utf8')) as Array<{ driveKey: string }>
      expect(onDisk.map((m) => m.driveKey).sort()).toEqual(members.map((m) => m.driveKey.toString('hex')).sort())
    } finally {
      await set.close()
      await store.close()
    }
  })
})
