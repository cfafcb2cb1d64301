import { describe, expect, it } from 'vitest'
import { isSyncError } from '@sync-agent/shared'
import { scaleOverride } from '../src/scale-overrides.js'

describe('scaleOverride', () => {
  it('is the default when unset or empty, the value when it lowers the threshold', () => {
    expect(scaleOverride('X', 2_000, 500, {})).toBe(2_000)
    expect(scaleOverride('X', 2_000, 500, { X: '' })).toBe(2_000)
    expect(scaleOverride('X', 2_000, 500, { X: '500' })).toBe(500)
    expect(scaleOverride('X', 2_000, 500, { X: '2000' })).toBe(2_000)
  })

  it('refuses a malformed value, one below the minimum and one that raises the threshold, naming the variable', () => {
    for (const raw of ['abc', '12.5', '-600', '1e3', ' 600', '499', '2001', '99999999999999999999']) {
      let thrown: unknown
      try {
        scaleOverride('SYNC_AGENT_X', 2_000, 500, { SYNC_AGENT_X: raw })
      } catch (err) {
        thrown = err
      }
      expect(isSyncError(thrown, 'E_CONFIG'), raw).toBe(true)
      expect(() => scaleOverride('SYNC_AGENT_X', 2_000, 500, { SYNC_AGENT_X: raw }), raw).toThrow(`SYNC_AGENT_X=${JSON.stringify(raw)}: expected a whole number from 500 to 2000`)
    }
  })
})
