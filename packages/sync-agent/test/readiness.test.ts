import { describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readiness, type ReadinessInput } from '../src/readiness.js'
import { until } from './helpers/until.js'

const base: ReadinessInput = { scanDone: true, caughtUpWith: null, connectedPeers: 1, missing: { files: 3, bytes: 2048 } }

function readMarker(dir: string): string {
  try {
    return readFileSync(join(dir, 'ready-once'), 'utf8')
  } catch {
    return ''
  }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'readiness-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

describe('Readiness', () => {
  it('a node with peers is ready once caught up with one, and stays ready', () =>
    withDir(async (dir) => {
      const r = new Readiness(dir, { hasPeers: true, offlineReadyAfterS: 60, requiredClasses: ['critical'] })
      await r.ready()
      expect(r.update({ ...base, scanDone: false })).toBe(false)
      expect(r.state()).toMatchObject({ ready: false, reason: 'scanning the folder' })
      r.update(base)
      expect(r.state().reason).toBe('fetching critical: 3 files (0.0 MiB) left')
      r.update({ ...base, connectedPeers: 0 })
      expect(r.state().reason).toMatch(/waiting for a peer/)
      expect(r.update({ ...base, caughtUpWith: '10.0.0.1:7657' })).toBe(true)
      expect(r.state()).toMatchObject({ ready: true, reason: 'complete as of peer 10.0.0.1:7657 (critical)' })
      // latched
      expect(r.update({ ...base, scanDone: true, connectedPeers: 0 })).toBe(false)
      expect(r.state().ready).toBe(true)
    }))

  it('the first node (no peers configured) is ready after its scan', () =>
    withDir(async (dir) => {
      const r = new Readiness(dir, { hasPeers: false, offlineReadyAfterS: 60, requiredClasses: ['critical'] })
      await r.ready()
      expect(r.update({ ...base, scanDone: false })).toBe(false)
      expect(r.update({ ...base, connectedPeers: 0 })).toBe(true)
    }))

  it('a node that was ready before is ready after a restart with no peer reachable, once the grace time passed; a fresh one is not', () =>
    withDir(async (dir) => {
      let now = 1_000
      const fresh = new Readiness(dir, { hasPeers: true, offlineReadyAfterS: 30, requiredClasses: ['critical'] }, () => now)
      await fresh.ready()
      now += 31_000
      expect(fresh.update({ ...base, connectedPeers: 0 })).toBe(false)
      expect(fresh.update({ ...base, caughtUpWith: 'a:1' })).toBe(true)
      // the marker is written in the background (readiness never waits on the disk)
      let marker = ''
      await until(() => (marker = readMarker(dir)).endsWith('\n'), 'the ready marker is written')
      expect(marker).toMatch(/^\d{4}-/)

      const restarted = new Readiness(dir, { hasPeers: true, offlineReadyAfterS: 30, requiredClasses: ['critical'] }, () => now)
      await restarted.ready()
      now += 29_000
      expect(restarted.update({ ...base, connectedPeers: 0 })).toBe(false)
      now += 1_000
      // a connected peer means: wait for it, not for the clock
      expect(restarted.update({ ...base, connectedPeers: 1 })).toBe(false)
      expect(restarted.update({ ...base, connectedPeers: 0 })).toBe(true)
      expect(restarted.state().reason).toMatch(/no peer reachable for 30 s/)

      const never = new Readiness(dir, { hasPeers: true, offlineReadyAfterS: 0, requiredClasses: ['critical'] }, () => now)
      await never.ready()
      now += 1e9
      expect(never.update({ ...base, connectedPeers: 0 })).toBe(false)
    }))
})
