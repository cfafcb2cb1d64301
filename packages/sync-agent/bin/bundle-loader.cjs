'use strict'
// Loads a CLI bundle (dist/bundle/main.cjs or cli.cjs, written by scripts/bundle.mjs) with
// V8's code cache for it (main.cjs.cache, cli.cjs.cache, written by the same build):
// compiling the 3 MiB main bundle was ~33 ms of every start, ~5 ms with the cache, and an
// agent was "ready to sync" ~50 ms sooner
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

/** `main`: the whole CLI (what `start` and `migrate` need); `cli`: every other command (see scripts/bundle.mjs) */
const BUNDLES = ['main', 'cli']

function bundlePath(name) {
  if (!BUNDLES.includes(name)) throw new Error(`no bundle named ${JSON.stringify(name)} (${BUNDLES.join(', ')})`)
  return path.join(__dirname, '..', 'dist', 'bundle', `${name}.cjs`)
}

/** how the last `load()` compiled its bundle: 'used', 'rejected', 'absent' or 'source-maps' */
exports.lastLoad = { codeCache: null }

function compile(file, cachedData) {
  return new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), {
    filename: file,
    cachedData,
    importModuleDynamically: vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER
  })
}

function evaluate(file, script) {
  const mod = { exports: {}, id: file, filename: file, loaded: false }
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file))
  mod.loaded = true
  return mod.exports
}

/** A bundle's exports (`main`). Throws ENOENT naming the .cjs file when it is not built. */
exports.load = function load(name = 'main') {
  const file = bundlePath(name)
  if (process.sourceMapsEnabled) {
    exports.lastLoad = { codeCache: 'source-maps' }
    return require(file)
  }
  let cachedData
  try {
    cachedData = fs.readFileSync(file + '.cache')
  } catch {
    cachedData = undefined
  }
  const script = compile(file, cachedData)
  exports.lastLoad = { codeCache: cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'used' }
  return evaluate(file, script)
}

/**
 * Build step: compiles and evaluates a bundle (its modules' top levels run; nothing starts)
 * and writes the code V8 made for it, which covers what every command runs first.
 */
exports.writeCodeCache = function writeCodeCache(name = 'main') {
  const file = bundlePath(name)
  const script = compile(file, undefined)
  evaluate(file, script)
  fs.writeFileSync(file + '.cache', script.createCachedData())
  return file + '.cache'
}
