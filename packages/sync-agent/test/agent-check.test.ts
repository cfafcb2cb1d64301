import { describe, expect, it } from 'vitest'
import { connect } from 'node:net'
import pino from 'pino'
import { AgentCheckServer, agentCheckLine } from '../src/http/agent-check-server.js'

function ask(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    let text = ''
    s.on('data', (c: Buffer) => (text += c.toString()))
    s.on('end', () => resolve(text))
    s.on('error', reject)
  })
}

describe('agent-check', () => {
  it('answers "up ready" when ready and "maint" with the reason otherwise, on one ASCII line', () => {
    expect(agentCheckLine({ ready: true, reason: 'x' })).toBe('up ready\n')
    expect(agentCheckLine({ ready: false, reason: 'fetching critical: 12 files (1.0 MiB) left' })).toBe('maint #fetching critical: 12 files (1.0 MiB) left\n')
    const line = agentCheckLine({ ready: false, reason: 'naïve\nup ready' + 'x'.repeat(500) })
    expect(line.split('\n')).toHaveLength(2)
    expect(line.startsWith('maint #na?ve?up ready')).toBe(true)
    expect(line.length).toBeLessThan(220)
  })

  it('serves each connection one line from the current state', async () => {
    let ready = false
    const server = new AgentCheckServer({ host: '127.0.0.1', port: 0 }, () => ({ ready, reason: 'syncing' }), pino({ level: 'silent' }))
    await server.ready()
    try {
      expect(await ask(server.address.port)).toBe('maint #syncing\n')
      ready = true
      expect(await ask(server.address.port)).toBe('up ready\n')
    } finally {
      await server.close()
    }
  })

  it('names the address when the port is taken', async () => {
    const first = new AgentCheckServer({ host: '127.0.0.1', port: 0 }, () => ({ ready: true, reason: '' }), pino({ level: 'silent' }))
    await first.ready()
    const second = new AgentCheckServer({ host: '127.0.0.1', port: first.address.port }, () => ({ ready: true, reason: '' }), pino({ level: 'silent' }))
    try {
      await expect(second.ready()).rejects.toThrow(`cannot listen for agent-check on 127.0.0.1:${first.address.port}: address in use`)
    } finally {
      await first.close()
    }
  })
})
