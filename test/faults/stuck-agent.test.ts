import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { describeStuckAgent } from './stuck-agent.ts'
import { until } from '../helpers/until.ts'

describe('describeStuckAgent', () => {
  it('names the function a process with a blocked event loop is spinning in, in five samples', async () => {
    const child = spawn(process.execPath, ['-e', 'function spinForever() { for (;;) {} } setTimeout(spinForever, 10); process.stdout.write("up\\n")'], { stdio: ['ignore', 'pipe', 'ignore'] })
    try {
      let up = ''
      child.stdout.on('data', (c: Buffer) => (up += c.toString()))
      await until(async () => up.includes('up'), { timeoutMs: 10_000, message: 'the child started' })
      // each sample waits on the debugger's answers: slow on a loaded machine (CI, beside the
      // other tests: 4 samples in 20 s)
      const text = await describeStuckAgent(child.pid as number, null, 60_000)
      expect(text).toMatch(/State:\s+R/)
      // five samples, each in the loop
      expect(text.match(/#0 spinForever/g)).toHaveLength(5)
    } finally {
      child.kill('SIGKILL')
    }
  }, 90_000)
})
