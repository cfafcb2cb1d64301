import { describe, expect, it } from 'vitest'
import type { KeptVersion } from '@sync-agent/shared'
import { formatRestore, formatVersions } from '../src/cli/format-versions.js'

const version = (path: string, stamp: string, size: number): KeptVersion => {
  const dot = path.lastIndexOf('.')
  return { path, name: `${path.slice(0, dot)}~${stamp}${path.slice(dot)}`, stamp, madeAt: '2026-11-30T23:15:00Z', size, mtimeMs: 0 }
}

describe('formatVersions', () => {
  it('one block per path, each version with its stamp, time, size and file; then the count and how to restore', () => {
    const text = formatVersions({ dir: '/v', truncated: false, versions: [version('a/x.css', '20261130-231500-1', 10), version('a/x.css', '20261130-231500', 2048), version('b.php', '20261130-231500', 1)] }, 'a')
    expect(text.split('\n')).toEqual([
      'a/x.css',
      '  20261130-231500-1  replaced 2026-11-30 23:15:00 UTC       10 B  a/x~20261130-231500-1.css',
      '  20261130-231500    replaced 2026-11-30 23:15:00 UTC    2.0 KiB  a/x~20261130-231500.css',
      'b.php',
      '  20261130-231500    replaced 2026-11-30 23:15:00 UTC        1 B  b~20261130-231500.php',
      '3 versions of 2 files of a in /v',
      'restore one: sync-agent versions restore PATH [--version STAMP]'
    ])
  })

  it('says when there is none, when versions are off, and when the listing was cut', () => {
    expect(formatVersions({ dir: '/v', truncated: false, versions: [] }, '')).toBe('no versions kept in /v')
    expect(formatVersions({ dir: '/v', truncated: false, versions: [] }, 'x')).toBe('no versions kept of x in /v')
    expect(formatVersions({ dir: null, truncated: false, versions: [] }, '')).toBe('this agent keeps no versions (versionsDir is not set)')
    expect(formatVersions({ dir: '/v', truncated: true, versions: [version('a.txt', '20261130-231500', 1)] }, '')).toContain('1 version of 1 file in /v (the first 1 only: give a PATH to see the rest)')
  })

  it('a restore says what came back and where the replaced file went', () => {
    const restored = version('a.txt', '20261130-231500', 1)
    expect(formatRestore({ path: 'a.txt', restored, replacedKeptAs: 'a~20261201-000000.txt' })).toBe('restored a.txt from its version of 2026-11-30 23:15:00 UTC (20261130-231500); the file it replaced is kept as a~20261201-000000.txt')
    expect(formatRestore({ path: 'a.txt', restored, replacedKeptAs: null })).toBe('restored a.txt from its version of 2026-11-30 23:15:00 UTC (20261130-231500)')
  })
})
