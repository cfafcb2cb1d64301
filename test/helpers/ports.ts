import net from 'node:net'

/**
 * TCP ports for agents to listen on. Not from port 0: the kernel hands out the same ephemeral
 * range for outgoing connections, and a port found free and closed again could be taken by any
 * process before the agent binds it (seen in CI: a migrated server's port was in use by an agent
 * of a test running beside it). Ports come instead from below the ephemeral range (32768+ on
 * Linux), from a slice of 1,500 per vitest worker, each handed out once per worker, and only
 * after a bind shows it is free now. Workers therefore never hand out the same port.
 */
const FIRST = 20_000
const SLICE = 1_500
const WORKERS = 8

const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? '1')
const sliceStart = FIRST + (((Number.isFinite(worker) ? worker : 1) - 1 + WORKERS) % WORKERS) * SLICE
// start at a random place in the slice, so a worker that runs again does not replay its ports
let cursor = Math.floor(Math.random() * SLICE)

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen({ host: '0.0.0.0', port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/** `count` distinct ports, free at the moment of the call, never handed out before in this worker. */
export async function freePorts(count: number): Promise<number[]> {
  const out: number[] = []
  for (let tried = 0; out.length < count; tried++) {
    if (tried >= SLICE) throw new Error(`no free port left in ${sliceStart}–${sliceStart + SLICE - 1}`)
    const port = sliceStart + (cursor++ % SLICE)
    if (await isFree(port)) out.push(port)
  }
  return out
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1)
  if (port === undefined) throw new Error('no free port')
  return port
}
