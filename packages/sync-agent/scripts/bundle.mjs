#!/usr/bin/env node
// Bundles the CLI (dist/cli/main.js, after tsc) and everything it imports into one CommonJS
// file, dist/bundle/main.cjs, then writes V8's code cache for it (main.cjs.cache; see
// bin/bundle-loader.cjs, which loads both); and the same without the engine, cli.cjs (see
// leaveAgentCommandsOut below), for the commands other than `start` and `migrate`. One file
// each, as a code cache is made for one script: the ESM chunks this replaced could not use
// one on Node 20.
//
// Why: loading ~900 small modules (the Hypercore stack is CommonJS, one file each) cost every
// `sync-agent start` 0.41 s of CPU before its first line of work, a bundle 0.17 s (2-core
// machine, 2026-11-30). A fresh node's start is on the path to its first file.
//
// Native addons are not bundled: they find their prebuilds next to their own package.json.
// Every package in the closure with prebuilds/ or binding.gyp is left as an import, resolved
// at run time from this package's node_modules, so each must be a direct dependency here
// (the build fails, naming it, if one is not).
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const outdir = join(pkgDir, 'dist', 'bundle')
const ownDeps = new Set(Object.keys(JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).dependencies ?? {}))
const fromHere = createRequire(join(pkgDir, 'package.json'))

/** The directory of the package that holds `file` (nearest package.json with a name). */
function packageRoot(file) {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json')
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name) return dir
  }
  return null
}

const natives = new Set()
const keepNativesOut = {
  name: 'keep-natives-out',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData?.natives || args.path.startsWith('node:')) return undefined
      const resolved = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { natives: true } })
      if (resolved.errors.length > 0 || resolved.external || !resolved.path) return undefined
      const root = packageRoot(resolved.path)
      if (!root || !(existsSync(join(root, 'prebuilds')) || existsSync(join(root, 'binding.gyp')))) return undefined
      const name = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).name
      if (args.path !== name) throw new Error(`${args.importer} imports ${args.path} inside the native package ${name}: not supported by bundle.mjs`)
      if (!ownDeps.has(name)) throw new Error(`${name} is a native addon (${relative(pkgDir, root)}): add it to the dependencies of packages/sync-agent so the bundle can load it`)
      fromHere.resolve(name)
      natives.add(name)
      return { path: name, external: true }
    })
  }
}

/**
 * The CLI without the engine: main.js with its `start` and `migrate` (agent-commands.js)
 * left out. bin/sync-agent.js runs every other command from it: `status` read and compiled the
 * whole 3.4 MB bundle for ~0.3 s of CPU; what a control command needs is a small part of it.
 */
const leaveAgentCommandsOut = {
  name: 'leave-agent-commands-out',
  setup(b) {
    b.onResolve({ filter: /\/agent-commands\.js$/ }, () => ({ path: 'agent-commands', namespace: 'not-in-cli-bundle' }))
    b.onLoad({ filter: /.*/, namespace: 'not-in-cli-bundle' }, () => ({
      contents: "throw new Error('start and migrate run from dist/bundle/main.cjs (bin/sync-agent.js picks it), not from cli.cjs')",
      loader: 'js'
    }))
  }
}

const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  sourcesContent: false,
  // the ESM sources' import.meta.url, as CommonJS has none: the bundle's own file
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
  metafile: true
}

rmSync(outdir, { recursive: true, force: true })
const entry = join(pkgDir, 'dist', 'cli', 'main.js')
for (const [name, plugins] of [['main', [keepNativesOut]], ['cli', [keepNativesOut, leaveAgentCommandsOut]]]) {
  const outfile = join(outdir, `${name}.cjs`)
  const result = await build({ ...common, entryPoints: [entry], outfile, plugins })
  asciiOnly(outfile)
  const inputs = Object.keys(result.metafile.inputs).length
  // in a child: evaluating the bundle loads the native addons, and a build should not keep them
  const cache = execFileSync(process.execPath, ['-e', `process.stdout.write(require('./bin/bundle-loader.cjs').writeCodeCache(${JSON.stringify(name)}))`], { cwd: pkgDir, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
  console.log(`bundle: ${inputs} modules → ${relative(process.cwd(), join(outdir, `${name}.cjs`))}, code cache ${relative(process.cwd(), cache)}`)
}
console.log(`bundle: natives left as requires: ${[...natives].sort().join(', ')}`)

/**
 * Escapes what esbuild leaves non-ASCII (its output is ASCII but for comments: eight
 * characters such as `→` and `µ` in ours). One of them makes V8 hold the whole source, which
 * a script keeps for as long as it runs, as a two-byte string: 6.9 MB of heap for main.cjs's
 * 3.4 MB (an idle agent's largest object, 2026-12-03). `\uXXXX` means the same character in
 * a string, template or regular expression, and is plain text in a comment, where all of
 * them are; comments run to their line's end or hold no code after them, so the source map's
 * columns still point at the same code.
 */
function asciiOnly(file) {
  const text = readFileSync(file, 'utf8')
  const ascii = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  if (ascii !== text) writeFileSync(file, ascii)
}
