import type Hypercore from 'hypercore'

/**
 * What Hypercore's replicator knows about who has block `index` of `core`: for a read that
 * timed out, the log says whether no connected peer had the block (a version nobody holds any
 * more), or one had it and the request went unanswered. Reads Hypercore's per-peer state,
 * which is not public API: every field is optional, and a missing one is left out.
 */
export interface PeerBlockState {
  remoteLength?: number
  remoteContiguousLength?: number
  hasBlock?: boolean
  inflight?: number
  paused?: boolean
  removed?: boolean
  remoteUploading?: boolean
  /** the peer says it can prove a newer length to us, from our length as it last acked it */
  remoteCanUpgrade?: boolean
  lengthAcked?: number
  remoteFork?: number
  syncsProcessing?: number
}

export interface BlockAvailability {
  index: number
  length: number
  hereAlready: boolean
  /** requests for a newer length in flight: while one is, Hypercore asks no peer for a block past our length */
  upgradeInflight?: number
  peers: PeerBlockState[]
}

interface ReplicatorPeer {
  remoteLength?: number
  remoteContiguousLength?: number
  inflight?: number
  paused?: boolean
  removed?: boolean
  remoteUploading?: boolean
  remoteCanUpgrade?: boolean
  lengthAcked?: number
  remoteFork?: number
  syncsProcessing?: number
  _remoteHasBlock?: (index: number) => boolean
}

export async function blockAvailability(core: Hypercore, index: number): Promise<BlockAvailability> {
  const peers = ((core as unknown as { peers?: ReplicatorPeer[] }).peers ?? []).map((p): PeerBlockState => {
    const state: PeerBlockState = {
      remoteLength: p.remoteLength,
      remoteContiguousLength: p.remoteContiguousLength,
      inflight: p.inflight,
      paused: p.paused,
      removed: p.removed,
      remoteUploading: p.remoteUploading,
      remoteCanUpgrade: p.remoteCanUpgrade,
      lengthAcked: p.lengthAcked,
      remoteFork: p.remoteFork,
      syncsProcessing: p.syncsProcessing,
    }
    if (typeof p._remoteHasBlock === 'function') state.hasBlock = p._remoteHasBlock(index)
    return state
  })
  let hereAlready = false
  try {
    hereAlready = await core.has(index)
  } catch {
    // a closing core: the rest still says something
  }
  const upgrade = (core as unknown as { replicator?: { _upgrade?: { inflight?: unknown[] } | null } }).replicator?._upgrade
  const upgradeInflight = upgrade === null ? 0 : upgrade?.inflight?.length
  return { index, length: core.length, hereAlready, upgradeInflight, peers }
}
