#!/usr/bin/env node
import { main } from '../dist/cli/main.js'

const code = await main(process.argv.slice(2))
process.exitCode = code
// a stopped agent may still hold timers of closed libraries; do not wait for them
if (process.argv[2] === 'start') setTimeout(() => process.exit(code), 2000).unref()
