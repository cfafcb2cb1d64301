import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SyncError } from '@sync-agent/shared'
import { IndexStore, type LocalRecord } from '../src/index-store.js'

const KEY = Buffer.alloc(32, 1)
const OTHER_KEY = Buffer.alloc(32, 2)
const DRIVE = 'e'.repeat(64)

let dir: string
const open: IndexStore[] = []

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sa-index-'))
})

afterEach(async () => {
  for (const store of open.splice(0)) await store.close()
  rmSync(dir, { recursive: true, force: true })
})

async function openStore(key = KEY): Promise<IndexStore> {
  const store = new IndexStore(dir, key)
  await store.ready()
  open.push(store)
  return store
}

async function reopen(store: IndexStore, key = KEY): Promise<IndexStore> {
  await store.close()
  return openStore(key)
}

function record(size: number, over: Partial<LocalRecord> = {}): LocalRecord {
  return { kind: 'file', size, mtimeMs: 1_700_000_000_000 + size, ino: 100 + size, mode: 0o644, hash: 'ab'.repeat(32), target: null, vv: { AAAAAAAAAAAAAAAA: size + 1 }, ...over }
}

function contents(store: IndexStore): Record<string, LocalRecord> {
  return Object.fromEntries(store.entries())
}

const JOURNAL = () => join(dir, 'index.journal')

async function expectDataDirError(promise: Promise<unknown>): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e
  )
  expect(err).toBeInstanceOf(SyncError)
  expect((err as SyncError).code).toBe('E_DATA_DIR')
}

describe('IndexStore', () => {
  it('keeps file and byte totals as records change, and after a reload', async () => {
    let store = await openStore()
    store.set('a', record(10))
    store.set('b', record(20))
    store.set('d', record(0, { kind: 'dir' }))
    store.set('a', record(15)) // replaced
    store.delete('b')
    store.delete('nothing')
    store.set('c', record(7, { kind: 'symlink', target: 'a' }))
    expect(store.fileTotals()).toEqual({ files: 1, bytes: 15 })
    store = await reopen(store)
    expect(store.fileTotals()).toEqual({ files: 1, bytes: 15 })
    store.set('d', record(5)) // a dir became a file
    expect(store.fileTotals()).toEqual({ files: 2, bytes: 20 })
  })

  it('starts empty in an empty dir', async () => {
    const store = await openStore()
    expect(store.size).toBe(0)
    expect(store.checkpoint(DRIVE)).toBe(0)
  })

  it('set, delete and checkpoints survive close and reopen', async () => {
    const store = await openStore()
    store.set('uploads/a.jpg', record(1))
    store.set('uploads/b.jpg', record(2))
    store.set('uploads', record(0, { kind: 'dir', hash: null }))
    store.delete('uploads/b.jpg')
    store.set('uploads/a.jpg', record(3)) // overwrite
    store.setCheckpoint(DRIVE, 42)
    const again = await reopen(store)
    expect(contents(again)).toEqual({ 'uploads/a.jpg': record(3), uploads: record(0, { kind: 'dir', hash: null }) })
    expect(again.checkpoint(DRIVE)).toBe(42)
  })

  it('deleting a path it does not have is a no-op', async () => {
    const store = await openStore()
    store.delete('nope')
    await store.flush()
    expect(statSync(JOURNAL()).size).toBe(0)
  })

  it('keeps what was flushed across several sessions', async () => {
    let store = await openStore()
    store.set('a', record(1))
    store = await reopen(store)
    store.set('b', record(2))
    store = await reopen(store)
    store.delete('a')
    store = await reopen(store)
    expect(contents(store)).toEqual({ b: record(2) })
  })

  it('compact() keeps the contents and empties the journal', async () => {
    const store = await openStore()
    store.set('a', record(1))
    store.set('b', record(2))
    store.setCheckpoint(DRIVE, 7)
    await store.compact()
    expect(statSync(JOURNAL()).size).toBe(0)
    expect(contents(store)).toEqual({ a: record(1), b: record(2) })
    store.set('c', record(3)) // journal on top of the snapshot
    store.delete('a')
    const again = await reopen(store)
    expect(contents(again)).toEqual({ b: record(2), c: record(3) })
    expect(again.checkpoint(DRIVE)).toBe(7)
  })

  it('a change flushed while compact() writes its snapshot is kept: the journal is emptied of what the snapshot holds only', async () => {
    const store = await openStore()
    store.set('a', record(1))
    const compacting = store.compact()
    // compact() writes the snapshot through the thread pool: this lands in the middle
    await new Promise<void>((resolve) => setImmediate(resolve))
    store.set('b', record(2))
    await store.flush()
    await compacting
    const again = await reopen(store)
    expect(contents(again)).toEqual({ a: record(1), b: record(2) })
  })

  it('an apply intent survives a reopen and a compaction until a record or delete of its path follows', async () => {
    const store = await openStore()
    const intent = { hash: 'cd'.repeat(32), size: 4, vv: { AAAAAAAAAAAAAAAA: 2 } }
    store.intend('a', intent)
    store.intend('b', { ...intent, size: 5 })
    store.intend('c', { ...intent, size: 6 })
    store.set('b', record(5))
    store.delete('c')
    let again = await reopen(store)
    expect(again.intent('a')).toEqual(intent)
    expect(again.intent('b')).toBeUndefined()
    expect(again.intent('c')).toBeUndefined()
    await again.compact()
    again = await reopen(again)
    expect(again.intent('a')).toEqual(intent)
    again.set('a', record(4))
    expect(again.intent('a')).toBeUndefined()
    expect((await reopen(again)).intent('a')).toBeUndefined()
  })

  it('a torn journal tail loses only the last frame, and the store keeps working', async () => {
    let store = await openStore()
    store.set('first', record(1))
    await store.flush()
    store.set('second', record(2))
    await store.flush()
    await store.close()
    open.splice(0)
    const size = statSync(JOURNAL()).size
    truncateSync(JOURNAL(), size - 3)

    store = await openStore()
    expect(contents(store)).toEqual({ first: record(1) })
    store.set('third', record(3))
    store = await reopen(store)
    expect(contents(store)).toEqual({ first: record(1), third: record(3) })
  })

  it('a torn length prefix is dropped too', async () => {
    let store = await openStore()
    store.set('first', record(1))
    await store.close()
    open.splice(0)
    const size = statSync(JOURNAL()).size
    // append two bytes of a length prefix, as if a crash cut the next frame's header
    appendFileSync(JOURNAL(), Buffer.from([0, 0]))
    store = await openStore()
    expect(contents(store)).toEqual({ first: record(1) })
    expect(statSync(JOURNAL()).size).toBe(size)
  })

  it('a wrong key on a compacted snapshot is E_DATA_DIR', async () => {
    const store = await openStore()
    store.set('a', record(1))
    await store.compact()
    await store.close()
    open.splice(0)
    await expectDataDirError(new IndexStore(dir, OTHER_KEY).ready())
  })

  it('opening with a wrong key does not destroy the journal', async () => {
    const store = await openStore()
    store.set('a', record(1))
    store.set('b', record(2))
    await store.close()
    open.splice(0)

    const wrong = new IndexStore(dir, OTHER_KEY)
    const opened = await wrong.ready().then(
      () => true,
      () => false
    )
    if (opened) {
      await wrong.close()
      // whatever the wrong key saw, the records must still be there for the right key
    }
    const right = await openStore()
    expect(contents(right)).toEqual({ a: record(1), b: record(2) })
  })

  it('never writes path names in plaintext', async () => {
    const names = ['très-secret-client-list.csv', 'uploads/2024/secret-name-ABC.jpg']
    const store = await openStore()
    for (const name of names) store.set(name, record(1, { target: null }))
    store.setCheckpoint(DRIVE, 3)
    await store.flush()
    const check = () => {
      const files = readdirSync(dir)
      expect(files.length).toBeGreaterThan(0)
      for (const file of files) {
        const bytes = readFileSync(join(dir, file))
        for (const name of names) {
          expect(bytes.includes(Buffer.from(name)), `${name} in ${file}`).toBe(false)
          expect(bytes.includes(Buffer.from('secret-name')), `fragment in ${file}`).toBe(false)
        }
        expect(bytes.includes(Buffer.from(DRIVE)), `drive key in ${file}`).toBe(false)
      }
    }
    check() // the journal
    await store.compact()
    check() // the snapshot
    await store.close()
    check()
  })

  it('close() is safe to call twice', async () => {
    const store = await openStore()
    store.set('a', record(1))
    await store.close()
    await store.close()
    const again = await openStore()
    expect(again.get('a')).toEqual(record(1))
  })
})
