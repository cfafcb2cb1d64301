import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { MARK, useScene } from '../helpers/hostile-scene.ts'
import { until } from '../helpers/until.ts'
import type { IndexRequest } from '../../packages/sync-agent/dist/protocol.js'
import { shortIdOf } from '../../packages/sync-agent/dist/device-id.js'

/**
 * A compromised read-write peer whose drive the victim sees for the first time (so the victim
 * asks for its index as one snapshot of raw blocks) announces that it serves index blocks and
 * answers with other blocks. The victim checks them against the tree the drive's key signed:
 * it must use none of them, must not ask that peer again, and must read the index through
 * Hypercore's replication instead (verified block by block), ending with every file.
 */
const FILES = 300 // above the size from which a fresh drive's index is read as a snapshot (256 entries)

describe('a signed writer that serves forged index blocks', () => {
  const sceneOf = useScene()

  it('the victim uses none of them, does not ask again, and reads the index through Hypercore', async () => {
    const scene = sceneOf()
    const h = await scene.hostile()
    const files = new Map<string, Buffer>()
    for (let i = 0; i < FILES; i++) {
      const rel = `themes/${MARK}-index/${i}.php`
      const bytes = Buffer.from(`<?php // ${i} ${randomBytes(8).toString('hex')}\n`)
      files.set(rel, bytes)
      await h.putFile(rel, bytes)
    }
    const asked: IndexRequest[] = []
    h.connect(scene.victim.address, {
      index: (request, reply) => {
        asked.push(request)
        reply(0, Array.from({ length: request.end - request.start }, () => randomBytes(120)))
      }
    })
    await until(async () => {
      for (const [rel, bytes] of files) {
        const got = await fs.readFile(path.join(scene.victim.folder, rel)).catch(() => null)
        if (!got) return false
        // a file under one of those names holds the true bytes, whenever it is looked at
        expect(got.equals(bytes), rel).toBe(true)
      }
      return true
    }, { timeoutMs: 90_000, message: `the victim has all ${FILES} files of the peer` })
    // the fast path was tried (the peer is the drive's author) and caught
    expect(asked.length).toBe(1)
    expect(asked[0]).toMatchObject({ start: 0 })
    expect(scene.records().some((r) => r.msg.includes("do not match the drive's signed tree"))).toBe(true)
    expect(scene.records().some((r) => r.msg.includes('read the index as a verified snapshot') && r.drive === shortIdOf(h.keyPair.publicKey))).toBe(false)
    await scene.assertUnharmed('forged index blocks')
  })
})
