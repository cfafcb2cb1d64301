import { SUM_BYTES } from '../protocol.js'
import { sumKey } from './block-sums.js'

/**
 * Which bytes of a new version can be copied from the older version this node has, and
 * which must come from the peer: given the new version's block sums (from the peer) and
 * where each sum occurs in the old file here, the new file as a list of runs, in order.
 * Adjacent blocks from the same source merge into one run (contiguous in the old file, for
 * copies). Pure: block-sums.ts computes the sums, content-fetcher.ts follows the plan.
 */
export interface DeltaRun {
  /** 'here': copy from the old file at `at`; 'peer': fetch the new version's bytes at `at` */
  source: 'here' | 'peer'
  at: number
  length: number
}

export interface DeltaPlan {
  runs: DeltaRun[]
  /** bytes copied from the old file */
  reusedBytes: number
  /** bytes fetched from the peer */
  fetchBytes: number
}

/**
 * `sums`: the new version's block sums, SUM_BYTES each; `size`, `blockSize`: its size and
 * block size; `here`: sum key → offset of a block with that sum in the old file (the same
 * block size; a shorter last block has a sum of its own length).
 */
export function planDelta(sums: Uint8Array, size: number, blockSize: number, here: ReadonlyMap<string, number>): DeltaPlan {
  const count = sums.length / SUM_BYTES
  if (!Number.isInteger(count) || count !== Math.ceil(size / blockSize)) {
    throw new RangeError(`${sums.length} bytes of sums for a file of ${size} bytes in blocks of ${blockSize}`)
  }
  const runs: DeltaRun[] = []
  let reusedBytes = 0
  for (let i = 0; i < count; i++) {
    const offset = i * blockSize
    const length = Math.min(blockSize, size - offset)
    const found = here.get(sumKey(sums, i * SUM_BYTES))
    const source = found === undefined ? 'peer' : 'here'
    const at = found ?? offset
    if (source === 'here') reusedBytes += length
    const last = runs[runs.length - 1]
    if (last && last.source === source && last.at + last.length === at) last.length += length
    else runs.push({ source, at, length })
  }
  return { runs, reusedBytes, fetchBytes: size - reusedBytes }
}
