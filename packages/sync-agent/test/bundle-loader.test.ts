import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const pkgDir = join(import.meta.dirname, '..')

/** loads the built bundle in a fresh node (with `flags`), says how it was compiled and what it exports */
async function load(flags: string[] = [], nodeOptions = ''): Promise<string> {
  const script = "const l = require('./bin/bundle-loader.cjs'); const m = l.load(); process.stdout.write(l.lastLoad.codeCache + ' ' + typeof m.main)"
  const { stdout } = await run(process.execPath, [...flags, '-e', script], { cwd: pkgDir, env: { ...process.env, NODE_OPTIONS: nodeOptions } })
  return stdout
}

// needs `pnpm build` (the test command runs it first): dist/bundle/main.cjs and its code cache
describe('the CLI bundle loader', () => {
  it('compiles the bundle from the code cache the build wrote', async () => {
    expect(await load()).toBe('used function')
  })

  it('still loads when V8 refuses the cache (other flags), and under source maps through the node loader', async () => {
    expect(await load(['--max-old-space-size=123'])).toBe('rejected function')
    expect(await load([], '--enable-source-maps')).toBe('source-maps function')
  })
})
