import Corestore from 'corestore'
import Hyperdrive from 'hyperdrive'
import { afterEach, describe, expect, it } from 'vitest'
import { OwnDriveWriter } from '../src/own-drive-writer.js'
import { useTempDirs } from './helpers/temp-dirs.js'

const tempDir = useTempDirs('sa-own-writer-')
const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.()
})

async function ownWriter(): Promise<{ writer: OwnDriveWriter; drive: Hyperdrive }> {
  const store = new Corestore(tempDir())
  const drive = new Hyperdrive(store.namespace('own'), null)
  await drive.ready()
  closers.push(() => store.close())
  return { writer: new OwnDriveWriter(drive, await drive.getBlobs()), drive }
}

const tag = (name: string) => ({ metadata: { v: 1 as const, name } }) as never
const tagOf = async (drive: Hyperdrive, key: string) => ((await drive.entry<{ name: string }>(key, { valueEncoding: 'json' }))?.value.metadata as { name: string } | null)?.name

// fault suite seed 5310: a conflict copy's withdrawal, decided on the copy's entry, was put
// after our newer entry for it (a program's rewrite of the copy) and replaced it
describe('OwnDriveWriter.putIf', () => {
  it('puts over the entry it was decided on', async () => {
    const { writer, drive } = await ownWriter()
    await writer.put('/copy.txt', tag('copy'))
    const put = await writer.putIf('/copy.txt', tag('withdrawn'), (current) => current !== null && current.seq === 1)
    expect(put).toBe(true)
    expect(await tagOf(drive, '/copy.txt')).toBe('withdrawn')
  })

  it('does not replace a put made after the decision, even one queued into the same flush', async () => {
    const { writer, drive } = await ownWriter()
    await writer.put('/copy.txt', tag('copy'))
    const decidedOn = (await drive.entry('/copy.txt'))?.seq
    // both queued in one tick: one flush, the edit first
    const [, put] = await Promise.all([
      writer.put('/copy.txt', tag('edited')),
      writer.putIf('/copy.txt', tag('withdrawn'), (current) => current?.seq === decidedOn)
    ])
    expect(put).toBe(false)
    expect(await tagOf(drive, '/copy.txt')).toBe('edited')
    // and in a later flush
    expect(await writer.putIf('/copy.txt', tag('withdrawn'), (current) => current?.seq === decidedOn)).toBe(false)
    expect(await tagOf(drive, '/copy.txt')).toBe('edited')
  })
})

describe('OwnDriveWriter.release', () => {
  it('clears the blocks of a blob that has them to itself, and never a small file\'s shared block', async () => {
    const { writer } = await ownWriter()
    const small = await writer.storeBuffer(Buffer.alloc(1000, 1))
    const other = await writer.storeBuffer(Buffer.alloc(2000, 2))
    const large = await writer.storeBuffer(Buffer.alloc(3 * 1024 * 1024, 3))
    await writer.put('/flush', tag('flush'))
    const blobs = (writer as unknown as { blobs: { core: { has(s: number, e?: number): Promise<boolean> } } }).blobs.core
    const range = (b: typeof large.blob) => [b.blockOffset, b.blockOffset + b.blockLength] as const
    expect(small.blob.blockOffset).toBe(other.blob.blockOffset) // packed together
    expect(await blobs.has(...range(large.blob))).toBe(true)

    expect(await writer.release(large.blob)).toBe(3 * 1024 * 1024)
    expect(await blobs.has(large.blob.blockOffset)).toBe(false)
    expect(await blobs.has(large.blob.blockOffset + large.blob.blockLength - 1)).toBe(false)

    // the shared block holds another file's bytes: kept
    expect(await writer.release(small.blob)).toBe(0)
    expect(await blobs.has(...range(other.blob))).toBe(true)
    // later files still land after the cleared blocks
    const next = await writer.storeBuffer(Buffer.alloc(200 * 1024, 4))
    await writer.put('/flush', tag('flush again'))
    expect(next.blob.blockOffset).toBe(large.blob.blockOffset + large.blob.blockLength)
    expect(await blobs.has(...range(next.blob))).toBe(true)
  })
})
