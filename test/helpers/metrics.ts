import { expect } from 'vitest'

/** GET /metrics → samples by `name{labels}` (Prometheus text format). */
export async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  const out = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^(\S+?(?:\{[^}]*\})?) (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    out.set(m[1] as string, Number(m[2]))
  }
  return out
}
