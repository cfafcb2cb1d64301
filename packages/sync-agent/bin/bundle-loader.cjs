'use strict'
// Loads the CLI bundle (dist/bundle/main.cjs, written by scripts/bundle.mjs) with V8's code
// cache for it (main.cjs.cache, written by the same build): compiling the 3 MiB bundle was
// ~33 ms of every start, ~5 ms with the cache, and an agent was "ready to sync" ~50 ms sooner
// (183 against 232 ms from spawn, 2-core machine, 2026-11-30). A fresh node's start is on the
// path to its first file.
//
// V8 refuses a cache made by another V8 version, with other V8 flags or for other source:
// the bundle is then compiled as before (`lastLoad.codeCache` says which). With source maps
// on (NODE_OPTIONS=--enable-source-maps), node's own loader loads it, as only code it
// compiled gets mapped stack traces.
const fs = require('node:fs')
const path = require('node:path')
const vm = require('node:vm')
const Module = require('node:module')

const BUNDLE = path.join(__dirname, '..', 'dist', 'bundle', 'main.cjs')
const CACHE = BUNDLE + '.cache'

/** how the last `load()` compiled the bundle: 'used', 'rejected', 'absent' or 'source-maps' */
exports.lastLoad = { codeCache: null }

function compile(cachedData) {
  return new vm.Script(Module.wrap(fs.readFileSync(BUNDLE, 'utf8')), {
    filename: BUNDLE,
    cachedData,
    importModuleDynamically: vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER
  })
}

function evaluate(script) {
  const mod = { exports: {}, id: BUNDLE, filename: BUNDLE, loaded: false }
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(BUNDLE), mod, BUNDLE, path.dirname(BUNDLE))
  mod.loaded = true
  return mod.exports
}

/** The bundle's exports (`main`). Throws ENOENT naming main.cjs when it is not built. */
exports.load = function load() {
  if (process.sourceMapsEnabled) {
    exports.lastLoad = { codeCache: 'source-maps' }
    return require(BUNDLE)
  }
  let cachedData
  try {
    cachedData = fs.readFileSync(CACHE)
  } catch {
    cachedData = undefined
  }
  const script = compile(cachedData)
  exports.lastLoad = { codeCache: cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'used' }
  return evaluate(script)
}

/**
 * Build step: compiles and evaluates the bundle (its modules' top levels run; nothing starts)
 * and writes the code V8 made for it, which covers what every command runs first.
 */
exports.writeCodeCache = function writeCodeCache() {
  const script = compile(undefined)
  evaluate(script)
  fs.writeFileSync(CACHE, script.createCachedData())
  return CACHE
}
