import { createServer, connect, type Server, type Socket } from 'node:net'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import type { FolderKeys } from '@sync-agent/shared'
import type { Logger } from '../../src/log.js'
import { PeerSession, type SessionHooks } from '../../src/peers/peer-session.js'
import { RateLimitedSocket } from '../../src/peers/rate-limited-socket.js'
import { bucketFor } from '../../src/peers/token-bucket.js'
import { until } from './until.js'

/** The hooks a test gives one side of a session pair (the rest do nothing). */
export type SideHooks = Partial<Omit<SessionHooks, 'onAuthenticated'>>

/**
 * Two real sessions on loopback (TCP + Noise + our channel), both authenticated: `client`
 * dialled, `served` accepted and announces `servedFeatures`. Returns once both proved the
 * secret; `close()` ends both and the listener. `servedSendKiBps` puts the served side's
 * socket under a send limit (rate-limited-socket.ts).
 */
export async function sessionPair(opts: {
  keys: FolderKeys
  log: Logger
  client: SideHooks
  served: SideHooks
  servedFeatures: number
  /** the serving side's send limit (maxSendKiBps), if any */
  servedSendKiBps?: number
}): Promise<{ client: PeerSession; served: PeerSession; close(): void }> {
  const hooks = (side: SideHooks): SessionHooks => ({
    onMembers: () => undefined,
    onHave: () => undefined,
    onPeerClock: () => undefined,
    onClose: () => undefined,
    ...side,
    onAuthenticated: () => true
  })
  const tcp: Server = createServer()
  const accepted = new Promise<Socket>((resolve) => tcp.once('connection', resolve))
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve))
  const port = (tcp.address() as { port: number }).port
  const client = new PeerSession(connect(port, '127.0.0.1'), true, 'server', NoiseSecretStream.keyPair(), opts.keys, hooks(opts.client), opts.log, 0)
  const socket = await accepted
  const servedTransport = opts.servedSendKiBps ? new RateLimitedSocket(socket, bucketFor(opts.servedSendKiBps), null) : socket
  const served = new PeerSession(servedTransport, false, 'client', NoiseSecretStream.keyPair(), opts.keys, hooks(opts.served), opts.log, opts.servedFeatures)
  await until(() => client.authenticated && served.authenticated, 'both sides proved the secret')
  return {
    client,
    served,
    close() {
      client.close()
      served.close()
      tcp.close()
    }
  }
}
