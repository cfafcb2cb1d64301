/**
 * Version vectors: device → counter. A change made on a device that has seen versions
 * v1..vn of a path gets join(v1..vn) with its own counter raised.
 */
export type VersionVector = Readonly<Record<string, number>>

export type Ordering = 'equal' | 'before' | 'after' | 'concurrent'

export function compareVectors(a: VersionVector, b: VersionVector): Ordering {
  let aBigger = false
  let bBigger = false
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const av = a[key] ?? 0
    const bv = b[key] ?? 0
    if (av > bv) aBigger = true
    else if (bv > av) bBigger = true
    if (aBigger && bBigger) return 'concurrent'
  }
  if (aBigger) return 'after'
  if (bBigger) return 'before'
  return 'equal'
}

export function joinVectors(vectors: Iterable<VersionVector>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const v of vectors) {
    for (const [key, n] of Object.entries(v)) if ((out[key] ?? 0) < n) out[key] = n
  }
  return out
}

/** join(vectors) with `device` set to `counter` (which must exceed every counter it had). */
export function advance(vectors: Iterable<VersionVector>, device: string, counter: number): Record<string, number> {
  const out = joinVectors(vectors)
  out[device] = Math.max(counter, (out[device] ?? 0) + 1)
  return out
}

export function isVersionVector(value: unknown): value is VersionVector {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const entries = Object.entries(value)
  if (entries.length === 0 || entries.length > 64) return false
  return entries.every(([k, v]) => /^[A-Z2-7]{16}$/.test(k) && Number.isSafeInteger(v) && (v as number) > 0)
}
