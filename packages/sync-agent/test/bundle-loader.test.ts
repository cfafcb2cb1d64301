import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const pkgDir = join(import.meta.dirname, '..')

/** loads a built bundle in a fresh node (with `flags`), says how it was compiled and what it exports */
async function load(bundle: string, flags: string[] = [], nodeOptions = ''): Promise<string> {
  const script = `const l = require('./bin/bundle-loader.cjs'); const m = l.load(${JSON.stringify(bundle)}); process.stdout.write(l.lastLoad.codeCache + ' ' + typeof m.main)`
  const { stdout } = await run(process.execPath, [...flags, '-e', script], { cwd: pkgDir, env: { ...process.env, NODE_OPTIONS: nodeOptions } })
  return stdout
}

// needs `pnpm build` (the test command runs it first): dist/bundle/{main,cli}.cjs and their code caches
describe('the CLI bundle loader', () => {
  it('compiles each bundle from the code cache the build wrote', async () => {
    expect(await load('main')).toBe('used function')
    expect(await load('cli')).toBe('used function')
  })

  it('still loads when V8 refuses the cache (other flags), and under source maps through the node loader', async () => {
    expect(await load('main', ['--max-old-space-size=123'])).toBe('rejected function')
    expect(await load('cli', [], '--enable-source-maps')).toBe('source-maps function')
  })

  it('names the bundles it knows when asked for another', async () => {
    await expect(load('daemon')).rejects.toThrow(/no bundle named "daemon" \(main, cli\)/)
  })

  it('the small bundle has no engine: every command but start and migrate runs from it, and those two say where they run', async () => {
    const { stat, readFile } = await import('node:fs/promises')
    const [full, small] = await Promise.all(['main', 'cli'].map((b) => stat(join(pkgDir, 'dist', 'bundle', `${b}.cjs`))))
    // a tenth of the size at most (3.4 MB against ~32 kB, 2026-12-02)
    expect(small!.size * 10).toBeLessThan(full!.size)
    const source = await readFile(join(pkgDir, 'dist', 'bundle', 'cli.cjs'), 'utf8')
    for (const engine of ['hyperdrive', 'corestore', 'zod', 'chokidar']) expect(source, engine).not.toMatch(new RegExp(`node_modules/${engine}/`))
    const script = "const l = require('./bin/bundle-loader.cjs'); l.load('cli').main(['start']).then((code) => process.stdout.write(String(code)))"
    const { stdout, stderr } = await run(process.execPath, ['-e', script], { cwd: pkgDir, env: { ...process.env, NODE_OPTIONS: '' } })
    expect(stdout).toBe('1')
    expect(stderr).toMatch(/start and migrate run from dist\/bundle\/main\.cjs/)
  })
})
