#!/usr/bin/env node
// The CLI as one bundle (scripts/bundle.mjs): a start loads it in ~0.2 s of CPU instead of
// ~0.4 s for the ~550 modules it is made of. NODE_OPTIONS=--enable-source-maps makes stack
// traces name the TypeScript sources (the maps are beside the bundle; off by default, as
// reading them costs every start ~25 ms).
let main
try {
  ;({ main } = await import('../dist/bundle/main.js'))
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/bundle/main.js')) {
    process.stderr.write('sync-agent: not built yet: run `pnpm build` (it writes packages/sync-agent/dist/bundle/)\n')
    process.exit(1)
  }
  throw err
}

const code = await main(process.argv.slice(2))
process.exitCode = code
// a stopped agent may still hold timers of closed libraries; do not wait for them
if (process.argv[2] === 'start') setTimeout(() => process.exit(code), 2000).unref()
