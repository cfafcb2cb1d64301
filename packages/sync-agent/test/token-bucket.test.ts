import { describe, expect, it } from 'vitest'
import { bucketFor, TokenBucket } from '../src/peers/token-bucket.js'

describe('TokenBucket', () => {
  it('lets a burst through at once, then makes each take wait its share of the rate', () => {
    let now = 0
    const bucket = new TokenBucket(1000, 500, () => now)
    expect(bucket.take(500)).toBe(0)
    // in debt by 100 bytes at 1000 B/s
    expect(bucket.take(100)).toBe(100)
    // nobody waited: the debt adds up
    expect(bucket.take(100)).toBe(200)
    now = 200
    expect(bucket.take(0)).toBe(0)
    expect(bucket.take(1000)).toBe(1000)
  })

  it('refills at the rate up to the burst, never beyond', () => {
    let now = 0
    const bucket = new TokenBucket(1000, 500, () => now)
    bucket.take(500)
    now = 250
    expect(bucket.take(250)).toBe(0)
    expect(bucket.take(1)).toBe(1)
    now = 60_000
    expect(bucket.take(500)).toBe(0)
    expect(bucket.take(10)).toBe(10)
  })

  it('passes a piece larger than the burst, at the rate', () => {
    let now = 0
    const bucket = new TokenBucket(1000, 100, () => now)
    expect(bucket.take(2100)).toBe(2000)
    now = 2000
    expect(bucket.take(0)).toBe(0)
  })

  it('is made from a KiB/s limit, none for 0, and refuses a rate that is not positive', () => {
    expect(bucketFor(0)).toBeNull()
    const b = bucketFor(512) as TokenBucket
    expect(b.rate).toBe(512 * 1024)
    expect(b.burst).toBe(128 * 1024)
    expect((bucketFor(8) as TokenBucket).burst).toBe(16 * 1024)
    expect(() => new TokenBucket(0, 10)).toThrow(RangeError)
  })
})
