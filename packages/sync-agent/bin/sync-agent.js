#!/usr/bin/env node
// The CLI as one bundle (scripts/bundle.mjs), loaded with V8's code cache (bundle-loader.cjs):
// a start loads it in ~0.2 s of CPU instead of ~0.4 s for the ~550 modules it is made of.
// NODE_OPTIONS=--enable-source-maps makes stack traces name the TypeScript sources (the map is
// beside the bundle; off by default, as reading it costs every start ~25 ms).
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const loader = require('./bundle-loader.cjs')
// the engine only where it runs: every other command loads the small bundle (~0.15 s of CPU less)
const bundle = process.argv[2] === 'start' || process.argv[2] === 'migrate' ? 'main' : 'cli'
let main
try {
  ;({ main } = loader.load(bundle))
} catch (err) {
  if (err?.code === 'ENOENT' && String(err.path ?? err.message).includes(`${bundle}.cjs`)) {
    process.stderr.write('sync-agent: not built yet: run `pnpm build` (it writes packages/sync-agent/dist/bundle/)\n')
    process.exit(1)
  }
  throw err
}

const code = await main(process.argv.slice(2))
process.exitCode = code
// a stopped agent may still hold timers of closed libraries; do not wait for them
if (process.argv[2] === 'start') setTimeout(() => process.exit(code), 2000).unref()
