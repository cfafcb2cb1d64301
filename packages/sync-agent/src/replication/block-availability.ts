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
}

export interface BlockAvailability {
  index: number
  length: number
  hereAlready: boolean
  peers: PeerBlockState[]
}

interface ReplicatorPeer {
  remoteLength?: number
  remoteContiguousLength?: number
  inflight?: number
  paused?: boolean
  removed?: boolean
  remoteUploading?: boolean
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
  return { index, length: core.length, hereAlready, peers }
}
