import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Agent } from '../helpers/agent.ts'
import { MARK, useScene } from '../helpers/hostile-scene.ts'
import { until } from '../helpers/until.ts'
import type { ContentRequest } from '../../packages/sync-agent/dist/protocol.js'

/**
 * A compromised read-write peer publishes valid, signed entries and announces that it serves
 * file contents from its folder, then answers every content request with other bytes (or not
 * at all). Contents fetched that way are checked against the sha256 the signed entry names:
 * the victim must never place a forged byte, must not ask that peer for that content again
 * (nor for anything after a few forgeries), and must get the true contents from the peer's
 * Hypercore blocks (which are signed block by block).
 */
const THEME = `themes/${MARK}-forged/style.css`
const UPLOAD = `uploads/2026/11/${MARK}-forged.jpg`
const SILENT_UPLOAD = `uploads/2026/11/${MARK}-silent.jpg`

async function read(agent: Agent, rel: string): Promise<Buffer | null> {
  return fs.readFile(path.join(agent.folder, rel)).catch(() => null)
}

describe('a signed writer that serves forged contents', () => {
  // a peer that owes an answer and stays silent is given up on after half of requestTimeoutS
  // (4 s here; 15 s by default): the silent peer's case below waits that long
  const sceneOf = useScene({ SYNC_AGENT_REQUEST_TIMEOUT_S: '8' })

  it('the victim never places a forged byte, does not ask again, and gets the true contents from its blocks', async () => {
    const scene = sceneOf()
    const h = await scene.hostile()
    const theme = Buffer.from('body { color: #123 }\n')
    const photo = randomBytes(5 * 1024 * 1024 + 77) // three content windows
    await h.putFile(THEME, theme)
    await h.putFile(UPLOAD, photo)
    const asked: ContentRequest[] = []
    h.connect(scene.victim.address, {
      content: (request, reply) => {
        asked.push(request)
        reply.data(randomBytes(request.length))
        reply.end(0)
      }
    })
    // any file the victim shows under those names holds the true bytes: checked at every look
    const seen: string[] = []
    await until(async () => {
      const [t, p] = await Promise.all([read(scene.victim, THEME), read(scene.victim, UPLOAD)])
      if (t && !t.equals(theme)) seen.push(`forged ${THEME}`)
      if (p && !p.equals(photo)) seen.push(`forged ${UPLOAD} (${p.length} bytes)`)
      return (t?.equals(theme) && p?.equals(photo)) ?? false
    }, { timeoutMs: 60_000, message: 'the victim has the true contents of both files' })
    expect(seen).toEqual([])
    // the fast path was tried (the peer is the author) and caught
    expect(asked.map((r) => r.path)).toContain(THEME)
    const caught = scene.records().filter((r) => r.msg.includes('does not match the version'))
    expect(caught.length).toBeGreaterThanOrEqual(1)
    // each content is asked for once: a forged answer is not tried again (after a few, nothing is)
    expect(asked.length).toBe(new Set(asked.map((r) => `${r.path}@${r.offset}`)).size)

    // a peer that announces contents and never answers: the victim waits once, then reads blocks
    const silent = await scene.hostile()
    const other = randomBytes(300 * 1024)
    await silent.putFile(SILENT_UPLOAD, other)
    const silentAsked: ContentRequest[] = []
    silent.connect(scene.victim.address, { content: (request) => void silentAsked.push(request) })
    await until(async () => (await read(scene.victim, SILENT_UPLOAD))?.equals(other) ?? false, {
      timeoutMs: 60_000,
      message: 'the victim has the silent peer\'s file from its blocks'
    })
    expect(silentAsked.length).toBe(1)

    await scene.assertUnharmed('forged contents')
  })
})
