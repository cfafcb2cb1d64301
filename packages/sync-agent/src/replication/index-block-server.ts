import type Hypercore from 'hypercore'
import type { Logger } from '../log.js'
import type { PeerSession } from '../peers/peer-session.js'
import { readRawBlocks } from './raw-blocks.js'
import { CONTENT_BUSY, CONTENT_DONE, CONTENT_NOT_HERE, CONTENT_REFUSED, MAX_INDEX_ANSWER_BYTES, type IndexRequest } from '../protocol.js'

/**
 * Answers peers' index requests: raw blocks (as stored: encrypted) of a member drive's index
 * core that we hold, for a peer that checks them against the drive's signed Merkle tree
 * (index-snapshot.ts) instead of replicating them one by one. Blocks we do not hold whole from
 * the start are "not here": we never wait for them.
 *
 * Bounded per peer: one request read at a time, a few more waiting, the rest answered busy.
 * Only peers that may read are served (the blocks are ciphertext, but an encrypted relay has
 * no use for a bulk copy and gets Hypercore's replication as before).
 */
const MAX_WAITING = 4

export interface IndexBlockServerDeps {
  /** the index core of a member drive we hold, by its key */
  core(driveKey: Buffer): Hypercore | null
  mayRead(session: PeerSession): boolean
  log: Logger
}

export class IndexBlockServer {
  private readonly queues = new Map<PeerSession, { waiting: IndexRequest[]; running: boolean }>()
  private closed = false
  /** answers with blocks, and the blocks sent (for logs and tests) */
  served = { requests: 0, blocks: 0 }

  constructor(private readonly deps: IndexBlockServerDeps) {}

  onRequest(session: PeerSession, request: IndexRequest): void {
    if (this.closed) return
    if (!this.deps.mayRead(session)) {
      session.sendIndexBlocks({ id: request.id, status: CONTENT_REFUSED, blocks: [] })
      return
    }
    let queue = this.queues.get(session)
    if (!queue) {
      queue = { waiting: [], running: false }
      this.queues.set(session, queue)
    }
    if (queue.waiting.length >= MAX_WAITING) {
      session.sendIndexBlocks({ id: request.id, status: CONTENT_BUSY, blocks: [] })
      return
    }
    queue.waiting.push(request)
    void this.pump(session, queue)
  }

  onSessionGone(session: PeerSession): void {
    this.queues.delete(session)
  }

  private async pump(session: PeerSession, queue: { waiting: IndexRequest[]; running: boolean }): Promise<void> {
    if (queue.running) return
    queue.running = true
    try {
      for (let request = queue.waiting.shift(); request && !this.closed && !session.closed; request = queue.waiting.shift()) {
        let blocks: Buffer[] = []
        try {
          blocks = await this.read(request)
        } catch (err) {
          this.deps.log.debug({ err, start: request.start }, 'index request failed')
        }
        if (blocks.length > 0) {
          this.served.requests++
          this.served.blocks += blocks.length
        }
        session.sendIndexBlocks({ id: request.id, status: blocks.length > 0 ? CONTENT_DONE : CONTENT_NOT_HERE, blocks })
      }
    } finally {
      queue.running = false
      if (session.closed) this.queues.delete(session)
    }
  }

  /** Blocks from `start` on, as many as fit one answer; none when we do not hold them all. */
  private async read(request: IndexRequest): Promise<Buffer[]> {
    const core = this.deps.core(request.driveKey)
    if (!core || core.contiguousLength < request.end) return []
    const gets = readRawBlocks(core, request.start, request.end)
    const out: Buffer[] = []
    let bytes = 0
    for (const block of await Promise.all(gets)) {
      if (!block || block.length === 0) break
      bytes += block.length
      if (bytes > MAX_INDEX_ANSWER_BYTES) break
      out.push(block)
    }
    return out
  }

  close(): void {
    this.closed = true
    this.queues.clear()
  }
}
