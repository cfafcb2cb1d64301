// The parts of the Holepunch modules sync-agent uses (they ship no types).
// Declared once here so `any` never leaks into our code.

declare module 'hypercore' {
  import type { EventEmitter } from 'node:events'
  export interface HypercorePeer {
    remotePublicKey: Buffer
    remoteLength: number
    remoteContiguousLength: number
  }
  export interface RangeDownload {
    done(): Promise<void>
    destroy(): void
  }
  export default interface Hypercore extends EventEmitter {
    readonly key: Buffer
    readonly discoveryKey: Buffer
    readonly length: number
    readonly contiguousLength: number
    readonly byteLength: number
    readonly writable: boolean
    readonly peers: HypercorePeer[]
    ready(): Promise<void>
    close(): Promise<void>
    update(opts?: { wait?: boolean }): Promise<boolean>
    download(range?: { start?: number; end?: number; linear?: boolean; blocks?: number[] }): RangeDownload
    has(start: number, end?: number): Promise<boolean>
    /** raw: the block as stored (encrypted, padded), not decoded */
    get(index: number, opts?: { wait?: boolean; timeout?: number; raw?: boolean }): Promise<Buffer | null>
    /** the Merkle tree's root hash at `length` (what the writer signs) */
    treeHash(length?: number): Promise<Buffer>
    clear(start: number, end?: number): Promise<unknown>
    /** compacts the storage of this core's blocks and tree (RocksDB compactRange): cleared blocks leave its files */
    compact(): Promise<void>
    append(blocks: Buffer | Buffer[]): Promise<{ length: number; byteLength: number }>
  }
}

declare module 'hyperblobs' {
  import type Hypercore from 'hypercore'
  import type { Readable, Writable } from 'node:stream'
  export interface BlobId {
    blockOffset: number
    blockLength: number
    byteOffset: number
    byteLength: number
  }
  export interface BlobWriteStream extends Writable {
    id: BlobId
  }
  export default interface Hyperblobs {
    readonly core: Hypercore
    put(buf: Uint8Array, opts?: { blockSize?: number }): Promise<BlobId>
    get(id: BlobId, opts?: { wait?: boolean; timeout?: number }): Promise<Buffer | null>
    createReadStream(id: BlobId, opts?: { wait?: boolean; timeout?: number; prefetch?: boolean }): Readable & AsyncIterable<Buffer>
    createWriteStream(opts?: { blockSize?: number }): BlobWriteStream
  }
}

declare module 'hyperdrive' {
  import type Hypercore from 'hypercore'
  import type Hyperblobs from 'hyperblobs'
  import type { BlobId } from 'hyperblobs'
  import type Corestore from 'corestore'

  export interface DriveEntryValue<M = unknown> {
    executable: boolean
    linkname: string | null
    blob: BlobId | null
    metadata: M | null
  }
  export interface DriveEntry<M = unknown> {
    seq: number
    key: string
    value: DriveEntryValue<M>
  }
  export interface DiffItem<M = unknown> {
    left: DriveEntry<M> | null
    right: DriveEntry<M> | null
  }
  export default class Hyperdrive {
    /** the blob core key of a drive, from its index core's manifest (null for old cores) */
    static getContentKey(manifest: unknown, key: Buffer): Buffer | null
    constructor(store: Corestore, key?: Buffer | null, opts?: { encryptionKey?: Buffer | null })
    readonly key: Buffer
    readonly discoveryKey: Buffer
    readonly version: number
    readonly writable: boolean
    readonly core: Hypercore
    readonly corestore: Corestore
    blobs: Hyperblobs | null
    readonly db: { core: Hypercore; version: number }
    ready(): Promise<void>
    close(): Promise<void>
    getBlobs(): Promise<Hyperblobs>
    entry<M = unknown>(path: string, opts?: { wait?: boolean; timeout?: number; valueEncoding?: 'binary' | 'json' }): Promise<DriveEntry<M> | null>
    putEntry<M = unknown>(path: string, value: Partial<DriveEntryValue<M>>): Promise<void>
    put(path: string, data: Uint8Array, opts?: { executable?: boolean; metadata?: unknown }): Promise<void>
    del(path: string): Promise<void>
    batch(): Hyperdrive
    flush(): Promise<void>
    diff<M = unknown>(version: number, folder?: string | null, opts?: { wait?: boolean; timeout?: number; valueEncoding?: 'binary' | 'json' }): AsyncIterable<DiffItem<M>>
    /** entries under a folder, sorted by key; recursive unless told otherwise */
    list<M = unknown>(folder: string, opts?: { recursive?: boolean; wait?: boolean; timeout?: number; valueEncoding?: 'binary' | 'json' }): AsyncIterable<DriveEntry<M>>
    entries<M = unknown>(range?: unknown, opts?: { wait?: boolean; timeout?: number }): AsyncIterable<DriveEntry<M>>
    checkout(version: number): Hyperdrive
    update(opts?: { wait?: boolean }): Promise<boolean>
  }
}

declare module 'hypercore/lib/bit-interlude.js' {
  /** Hypercore's pending bitfield changes, written into a storage batch by `flush` */
  export default class BitInterlude {
    setRange(start: number, end: number, value: boolean): void
    flush(tx: unknown, bitfield: unknown): Array<{ start: number; end: number; value: boolean }>
  }
}

declare module 'hypercore-crypto' {
  interface Node {
    index: number
    size: number
    hash: Buffer
  }
  const crypto: {
    /** leaf hash of a block */
    data(block: Uint8Array): Buffer
    parent(a: Node, b: Node): Buffer
    /** root hash of a tree from its full roots */
    tree(roots: Node[]): Buffer
  }
  export default crypto
}

declare module 'hyperbee/lib/messages.js' {
  /** one Hyperbee block: a key, its new value (null: deleted) and the tree index */
  export const Node: {
    decode(buf: Uint8Array): { index: Uint8Array; key: Uint8Array | null; value: Uint8Array | null }
    encode(node: { index: Uint8Array; key: Uint8Array; value: Uint8Array | null }): Uint8Array
  }
}

declare module 'hypercore-storage' {
  export default class CoreStorage {
    constructor(directory: string, opts?: { writeBufferSize?: number; treeCache?: { maxSize: number } })
  }
}

declare module 'rache' {
  /** A size-bounded cache; `sub()` caches share their parent's bound (hyperbee's node caches). */
  export default class Rache {
    constructor(opts?: { maxSize?: number })
    readonly globalSize: number
    sub(): Rache
  }
}

declare module 'corestore' {
  import type Hypercore from 'hypercore'
  import type { Duplex } from 'node:stream'
  export interface KeyPair {
    publicKey: Buffer
    secretKey: Buffer
  }
  export default class Corestore {
    constructor(storage: string | import('hypercore-storage').default, opts?: Record<string, unknown>)
    /** the node cache every Hyperbee of this store shares (`globalCache` option) */
    readonly globalCache: import('rache').default | null
    ready(): Promise<void>
    close(): Promise<void>
    namespace(name: string): Corestore
    session(): Corestore
    get(opts: { key?: Buffer; name?: string; encryptionKey?: Buffer }): Hypercore
    createKeyPair(name: string): Promise<KeyPair>
    /** a stream to replicate over: an existing connection, or a new one (`true`: initiator) */
    replicate(stream: Duplex | boolean): Duplex
  }
}

declare module '@hyperswarm/secret-stream' {
  import type { Duplex } from 'node:stream'
  import type { KeyPair } from 'corestore'
  export default class NoiseSecretStream extends Duplex {
    constructor(isInitiator: boolean, rawStream: Duplex, opts?: { keyPair?: KeyPair })
    readonly isInitiator: boolean
    readonly publicKey: Buffer
    readonly remotePublicKey: Buffer
    readonly handshakeHash: Buffer
    readonly rawStream: Duplex
    /** bytes of the Noise messages received / sent so far (counted per whole message) */
    readonly rawBytesRead: number
    readonly rawBytesWritten: number
    static keyPair(seed?: Buffer): KeyPair
    opened: Promise<boolean>
    userData: unknown
    setKeepAlive(ms: number): void
    setTimeout(ms: number): void
  }
}

declare module 'protomux' {
  import type { Duplex } from 'node:stream'
  export interface Encoding<T> {
    preencode(state: unknown, value: T): void
    encode(state: unknown, value: T): void
    decode(state: unknown): T
  }
  export interface Message<T> {
    send(value: T): boolean
  }
  export interface Channel {
    readonly opened: boolean
    readonly closed: boolean
    /** false while the stream's write buffer is full (shared by every channel on it) */
    readonly drained: boolean
    open(handshake?: unknown): void
    close(): void
    /** messages sent until uncork() leave in one batch frame (counts: every cork needs its uncork) */
    cork(): void
    uncork(): void
    addMessage<T>(opts: { encoding: Encoding<T>; onmessage: (value: T) => void | Promise<void> }): Message<T>
  }
  export default class Protomux {
    static from(stream: Duplex): Protomux
    createChannel<H>(opts: {
      protocol: string
      id?: Buffer | null
      unique?: boolean
      handshake?: Encoding<H>
      onopen?: (handshake: H) => void | Promise<void>
      onclose?: () => void
      ondestroy?: () => void
      /** the stream has room again */
      ondrain?: () => void
    }): Channel | null
  }
}

declare module 'hyperswarm' {
  import type { EventEmitter } from 'node:events'
  import type NoiseSecretStream from '@hyperswarm/secret-stream'
  import type { KeyPair } from 'corestore'
  export interface PeerDiscovery {
    flushed(): Promise<void>
    refresh(opts?: { server?: boolean; client?: boolean }): Promise<void>
    destroy(): Promise<void>
  }
  export interface PeerInfo {
    publicKey: Buffer
  }
  export default class Hyperswarm extends EventEmitter {
    constructor(opts?: { keyPair?: KeyPair; dht?: unknown; bootstrap?: Array<{ host: string; port: number }>; firewall?: (remotePublicKey: Buffer) => boolean })
    join(topic: Buffer, opts?: { server?: boolean; client?: boolean }): PeerDiscovery
    flush(): Promise<void>
    readonly connections: Set<NoiseSecretStream>
    /** devices found or connected, by public key (hex); entries of idle peers are collected */
    readonly peers: Map<string, PeerInfo>
    readonly stats: { connects: { client: { attempted: number; opened: number; closed: number }; server: { opened: number; closed: number } } }
    /** unannounces from the DHT first unless `force` */
    destroy(opts?: { force?: boolean }): Promise<void>
    on(event: 'connection', listener: (conn: NoiseSecretStream, info: PeerInfo) => void): this
    on(event: string, listener: (...args: unknown[]) => void): this
  }
}

declare module 'hyperdht' {
  import type { EventEmitter } from 'node:events'
  export default class HyperDHT {
    constructor(opts?: { bootstrap?: Array<{ host: string; port: number }>; host?: string; port?: number })
    /** dht-rpc's view of the network, from the share of its requests that time out */
    readonly online: boolean
    readonly degraded: boolean
    readonly firewalled: boolean
    connect(remotePublicKey: Buffer, opts?: Record<string, unknown>): EventEmitter
    static bootstrapper(port: number, host: string, opts?: Record<string, unknown>): HyperDHT
    ready(): Promise<void>
    fullyBootstrapped(): Promise<void>
    /** `force`: without closing its servers (unannouncing) first */
    destroy(opts?: { force?: boolean }): Promise<void>
  }
}
