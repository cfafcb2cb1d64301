import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { useHarness } from '../helpers/harness.ts'
import type { HostilePeer, RawEntryValue } from '../helpers/hostile-peer.ts'
import { MARK, startScene, type LogRecord, type Scene } from '../helpers/hostile-scene.ts'
import { readTree } from '../helpers/tree.ts'
import { until } from '../helpers/until.ts'

/**
 * A compromised peer holding the read-write secret publishes crafted entries into its own
 * (validly signed) drive. The victim must reject each with a clear log line, write nothing
 * outside its folder, keep running, and keep syncing with the good peer.
 */
interface EntryCase {
  name: string
  /** raw drive key (a Buffer for bytes that are not UTF-8) */
  key: (id: string) => string | Buffer
  value: (h: HostilePeer, id: string) => Promise<RawEntryValue | 'undecodable'>
  /** what the victim's log record says */
  expect: { code: string; problem?: string; msg?: RegExp }
}

const text = Buffer.from('hostile content\n')
const file = async (h: HostilePeer): Promise<RawEntryValue> => ({ blob: await h.putBlob(text), metadata: h.fileMeta(text) })
const link = (target: string) => async (h: HostilePeer): Promise<RawEntryValue> => ({
  linkname: target,
  metadata: { v: 1, vv: h.nextVector(), ts: Date.now(), kind: 'symlink', size: 0, mtime: Date.now(), mode: 0o777, hash: null }
})
const TIB = 2 ** 40

const CASES: EntryCase[] = [
  { name: 'path traversal ../', key: (id) => `/../../../${id}`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'dot-segment' } },
  { name: 'traversal inside a path a/../../', key: (id) => `/a/../../../../${id}`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'dot-segment' } },
  { name: 'absolute path', key: (id) => `//tmp/${id}`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'absolute' } },
  { name: 'Windows drive letter', key: (id) => `/C:/${id}`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'drive-letter' } },
  { name: 'backslash traversal', key: (id) => `/..\\..\\..\\${id}`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'backslash' } },
  { name: 'NUL byte', key: (id) => `/${id}\0.php`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'nul' } },
  { name: 'empty segment', key: (id) => `/a//${id}`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'empty-segment' } },
  { name: 'dot segment', key: (id) => `/./${id}`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'dot-segment' } },
  { name: 'over-long name', key: (id) => `/${id}-${'x'.repeat(300)}`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'segment-too-long' } },
  { name: 'over-long path', key: (id) => `/${id}/${('d'.repeat(200) + '/').repeat(25)}f`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'too-long' } },
  { name: 'invalid UTF-8', key: (id) => Buffer.concat([Buffer.from(`/${id}-`), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from('.php')]), value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'invalid-utf8' } },
  { name: 'name of our temp files', key: (id) => `/.syncagent-tmp-${id}`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'reserved-name' } },
  { name: 'temp name in a subdirectory', key: (id) => `/sub/.syncagent-tmp-${id}`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'reserved-name' } },
  { name: '.syncignore', key: () => `/.syncignore`, value: file, expect: { code: 'E_PATH_UNSAFE', problem: 'reserved-name', msg: /\.syncignore/ } },
  { name: 'symlink to an absolute path', key: (id) => `/${id}-abs-link`, value: link('/etc'), expect: { code: 'E_PATH_UNSAFE', msg: /points outside the folder/ } },
  { name: 'symlink climbing out', key: (id) => `/${id}-up-link`, value: link('../../../../../etc'), expect: { code: 'E_PATH_UNSAFE', msg: /points outside the folder/ } },
  {
    name: 'blob size differs from metadata',
    key: (id) => `/${id}-size.txt`,
    value: async (h) => ({ blob: await h.putBlob(Buffer.from('ten bytes!')), metadata: h.fileMeta(Buffer.from('five!')) }),
    expect: { code: 'E_PEER_PROTOCOL', msg: /blob size 10 differs from metadata size 5/ }
  },
  {
    name: 'content that does not match its hash',
    key: (id) => `/${id}-hash.txt`,
    value: async (h) => ({ blob: await h.putBlob(Buffer.from('actual')), metadata: h.fileMeta(Buffer.from('claims')) }),
    expect: { code: 'E_PEER_PROTOCOL', msg: /does not match its entry/ }
  },
  {
    name: 'claimed size of terabytes',
    key: (id) => `/${id}-huge.bin`,
    value: async (h) => ({
      blob: { blockOffset: 0, blockLength: (4 * TIB) / 65536, byteOffset: 0, byteLength: 4 * TIB },
      metadata: { ...h.fileMeta(text), size: 4 * TIB }
    }),
    expect: { code: 'E_DISK_FULL', msg: /free/ }
  },
  {
    name: 'size beyond any file',
    key: (id) => `/${id}-absurd.bin`,
    value: async (h) => ({
      blob: { blockOffset: 0, blockLength: 1, byteOffset: 0, byteLength: 2 ** 52 },
      metadata: { ...h.fileMeta(text), size: 2 ** 52 }
    }),
    expect: { code: 'E_PEER_PROTOCOL', msg: /implausible size/ }
  },
  { name: 'value that is not JSON', key: (id) => `/${id}-garbage`, value: async () => 'undecodable', expect: { code: 'E_PEER_PROTOCOL', msg: /cannot be decoded/ } },
  { name: 'entry without metadata', key: (id) => `/${id}-nometa`, value: async () => ({ metadata: 'nope' }), expect: { code: 'E_PEER_PROTOCOL', msg: /no sync-agent metadata/ } },
  {
    name: 'metadata of the wrong types',
    key: (id) => `/${id}-types`,
    value: async (h) => ({ metadata: { ...h.fileMeta(text), vv: { [h.author]: 'x' }, size: -1 } }),
    expect: { code: 'E_PEER_PROTOCOL', msg: /malformed version vector/ }
  }
]

describe('hostile entries from a compromised read-write peer', () => {
  const harness = useHarness()
  let scene: Scene
  let hostile: HostilePeer
  const ids = new Map<string, string>()

  beforeAll(async () => {
    scene = await startScene(harness)
    hostile = await scene.hostile()
    // the same path as a good file on the good peer, so a bad entry there cannot block it
    for (const [i, c] of CASES.entries()) {
      const id = `${MARK}-${i}`
      ids.set(c.name, id)
      const value = await c.value(hostile, id)
      if (value === 'undecodable') await hostile.putUndecodable(c.key(id) as string)
      else await hostile.putRaw(c.key(id), value)
    }
    // a good file in the hostile drive: the victim still takes what is valid
    await hostile.putFile(`${MARK}-valid-from-hostile.txt`, Buffer.from('valid\n'))
    hostile.connect(scene.victim.address)
  })

  afterAll(async () => {
    await scene?.close()
  })

  const matches = (c: EntryCase, id: string) => (r: LogRecord) =>
    r.code === c.expect.code &&
    (c.expect.problem === undefined || r.problem === c.expect.problem) &&
    (c.expect.msg === undefined || c.expect.msg.test(r.msg)) &&
    (c.name === '.syncignore' || r.msg.includes(id) || String(r.path ?? '').includes(id))

  it.each(CASES.map((c) => [c.name, c] as const))('%s: rejected with a clear log line', async (_name, c) => {
    const id = ids.get(c.name) as string
    const record = await scene.waitRecord(matches(c, id), `${c.expect.code} for "${c.name}"`, 30_000)
    expect(['warn', 'error']).toContain(record.level)
    await scene.assertUnharmed(c.name)
  })

  it('valid entries of the same peer still apply, bad ones never reach the folder', async () => {
    const valid = path.join(scene.victim.folder, `${MARK}-valid-from-hostile.txt`)
    await until(async () => (await fs.readFile(valid, 'utf8').catch(() => null)) === 'valid\n', { timeoutMs: 30_000, message: 'valid hostile file arrives' })
    const tree = await readTree(scene.victim.folder, { hash: false })
    const names = [...tree.keys()]
    expect(names.filter((n) => n.includes(MARK))).toEqual([`${MARK}-valid-from-hostile.txt`])
    expect(names.some((n) => n.includes('.syncagent-tmp-'))).toBe(false)
    // .syncignore was not replaced by the peer's
    await expect(fs.access(path.join(scene.victim.folder, '.syncignore'))).rejects.toThrow()
  })

  it('a chain of symlinks that is inside on paper but outside on disk is refused', async () => {
    // d/b -> .. is the folder itself; x -> d/b/.. reads as "d" but the kernel resolves it to
    // the folder's parent; a file written through x would land outside
    const chainId = `${MARK}-chain`
    const linkMeta = () => ({ v: 1, vv: hostile.nextVector(), ts: Date.now(), kind: 'symlink', size: 0, mtime: Date.now(), mode: 0o777, hash: null })
    await hostile.putRaw(`/${chainId}-d`, { metadata: { v: 1, vv: hostile.nextVector(), ts: Date.now(), kind: 'dir', size: 0, mtime: Date.now(), mode: 0o755, hash: null } })
    await hostile.putRaw(`/${chainId}-d/b`, { linkname: '..', metadata: linkMeta() })
    await hostile.putRaw(`/${chainId}-x`, { linkname: `${chainId}-d/b/..`, metadata: linkMeta() })
    const escape = Buffer.from('escaped\n')
    await hostile.putRaw(`/${chainId}-x/${chainId}-escaped.txt`, { blob: await hostile.putBlob(escape), metadata: hostile.fileMeta(escape) })
    await scene.waitRecord((r) => r.code === 'E_PATH_UNSAFE' && /points outside the folder/.test(r.msg) && String(r.path ?? r.msg).includes(`${chainId}-x`), 'the chained link refused')
    await scene.assertUnharmed('symlink chain')
    const link = await fs.lstat(path.join(scene.victim.folder, `${chainId}-x`)).catch(() => null)
    expect(link?.isSymbolicLink() ?? false).toBe(false)
  })
})
