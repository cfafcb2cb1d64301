import { describe, expect, it } from 'vitest'
import { formatHostPort, parseHostPort, validateConfig, type ConfigValidation } from '../src/config-schema.js'

const READY_DEFAULTS = { priority: 'wordpress', readyClasses: 1, offlineReadyAfterS: 60, serve: ['uploads/**'] }

describe('parseHostPort', () => {
  it.each([
    ['127.0.0.1:80', '127.0.0.1', 80],
    ['example.com:7657', 'example.com', 7657],
    ['peer-1:65535', 'peer-1', 65535],
    ['[::1]:7657', '::1', 7657],
    ['[2001:db8::2]:1', '2001:db8::2', 1],
    ['  10.0.0.2:7657 ', '10.0.0.2', 7657]
  ])('%j → host %j, port %i', (text, host, port) => {
    expect(parseHostPort(text)).toEqual({ host, port })
  })

  it.each([
    ['no port', 'example.com'],
    ['port 0', 'example.com:0'],
    ['port 70000', 'example.com:70000'],
    ['port 65536', '127.0.0.1:65536'],
    ['a bare word', 'abc'],
    ['empty port', 'host:'],
    ['empty host', ':80'],
    ['a non-numeric port', 'host:http'],
    ['a negative port', 'host:-1'],
    ['five dotted numbers', '1.2.3.4.5:1'],
    ['an IPv4 octet over 255', '256.1.1.1:80'],
    ['an unbracketed IPv6 address', '::1:7657'],
    ['a host with an underscore', 'my_host:80'],
    ['a host with a space', 'my host:80']
  ])('rejects %s (%j) with a message naming the input', (_name, text) => {
    const result = parseHostPort(text)
    expect(typeof result).toBe('string')
    expect(result).toContain(JSON.stringify(text))
  })

  it.each([
    [{ host: '127.0.0.1', port: 80 }, '127.0.0.1:80'],
    [{ host: '::1', port: 7657 }, '[::1]:7657']
  ])('formatHostPort(%j) → %s and parses back', (hp, text) => {
    expect(formatHostPort(hp)).toBe(text)
    expect(parseHostPort(text)).toEqual(hp)
  })
})

const minimal = { folder: '/srv/wp-content', data: '/var/lib/sync-agent' }

function failure(result: ConfigValidation): { path: string[]; problem: string } {
  if (result.ok) throw new Error(`expected a validation failure, got ${JSON.stringify(result.config)}`)
  return result
}

describe('validateConfig', () => {
  it('fills in the defaults for a minimal config', () => {
    const result = validateConfig(minimal)
    expect(result).toEqual({
      ok: true,
      config: {
        folder: '/srv/wp-content',
        data: '/var/lib/sync-agent',
        listen: { host: '0.0.0.0', port: 7657 },
        peers: [],
        logLevel: 'info',
        settleMs: 50,
        rescanIntervalS: 600,
        bootstrap: [],
        publicDht: false,
        massDeleteShare: 0.5,
        notServingAfterS: 60,
        requestTimeoutS: 30,
        watchdogS: 60,
        versionsKeepDays: 30,
        maxSendKiBps: 0,
        maxRecvKiBps: 0,
        limitLan: true,
        allow: [],
        ignore: { presets: ['wordpress'], patterns: [] },
        ...READY_DEFAULTS
      }
    })
  })

  it('keeps given values', () => {
    const result = validateConfig({
      ...minimal,
      secret: 'x',
      listen: '127.0.0.1:9000',
      peers: ['a.example:7657', '[::1]:1'],
      control: '/run/sa.sock',
      logLevel: 'debug',
      settleMs: '0',
      rescanIntervalS: '0',
      massDeleteShare: '0.25',
      notServingAfterS: '5',
      requestTimeoutS: '6',
      watchdogS: '0',
      maxSendKiBps: '512',
      maxRecvKiBps: 8,
      limitLan: 'no',
      versionsDir: '/srv/versions',
      versionsKeepDays: '0',
      allow: ['A'.repeat(52)],
      bootstrap: ['10.0.0.9:49737'],
      publicDht: 'true',
      dhtNode: '10.0.0.1:49737',
      ignore: { presets: [], patterns: ['*.bak'] }
    })
    expect(result.ok && result.config).toEqual({
      ...minimal,
      secret: 'x',
      listen: { host: '127.0.0.1', port: 9000 },
      peers: [
        { host: 'a.example', port: 7657 },
        { host: '::1', port: 1 }
      ],
      control: '/run/sa.sock',
      logLevel: 'debug',
      settleMs: 0,
      rescanIntervalS: 0,
      massDeleteShare: 0.25,
      notServingAfterS: 5,
      requestTimeoutS: 6,
      watchdogS: 0,
      maxSendKiBps: 512,
      maxRecvKiBps: 8,
      limitLan: false,
      versionsDir: '/srv/versions',
      versionsKeepDays: 0,
      allow: ['A'.repeat(52)],
      bootstrap: [{ host: '10.0.0.9', port: 49737 }],
      publicDht: true,
      dhtNode: { host: '10.0.0.1', port: 49737 },
      ignore: { presets: [], patterns: ['*.bak'] },
      ...READY_DEFAULTS
    })
  })

  it('reads priority classes, ready settings and the HTTP ports', () => {
    const result = validateConfig({
      ...minimal,
      priority: [{ name: 'code', paths: ['themes/**', '*.php'] }, { name: 'media', paths: ['uploads/**'], order: 'newest-first' }],
      readyClasses: '2',
      offlineReadyAfterS: 0,
      http: '8080',
      agentCheck: '0.0.0.0:7659',
      serve: ['uploads/**', 'media/*.jpg']
    })
    expect(result.ok && result.config).toMatchObject({
      priority: [
        { name: 'code', paths: ['themes/**', '*.php'], order: 'path' },
        { name: 'media', paths: ['uploads/**'], order: 'newest-first' }
      ],
      readyClasses: 2,
      offlineReadyAfterS: 0,
      http: { host: '127.0.0.1', port: 8080 },
      agentCheck: { host: '0.0.0.0', port: 7659 },
      serve: ['uploads/**', 'media/*.jpg']
    })
  })

  it.each<[string, Record<string, unknown>, string[], RegExp]>([
    ['an unknown preset', { priority: 'joomla' }, ['priority'], /"wordpress".*"none"/],
    ['an empty class list', { priority: [] }, ['priority'], /at least one class/],
    ['a class without paths', { priority: [{ name: 'a', paths: [] }] }, ['priority', '0', 'paths'], /at least one path/],
    ['an absolute pattern', { priority: [{ name: 'a', paths: ['/etc/**'] }] }, ['priority', '0', 'paths', '0'], /relative to the folder/],
    ['a pattern with ..', { serve: ['uploads/../**'] }, ['serve', '0'], /\.\./],
    ['a duplicate class name', { priority: [{ name: 'a', paths: ['x/**'] }, { name: 'a', paths: ['y/**'] }] }, ['priority'], /unique/],
    ['a bad class order', { priority: [{ name: 'a', paths: ['x/**'], order: 'random' }] }, ['priority', '0', 'order'], /newest-first/],
    ['a bad HTTP port', { http: '70000' }, ['http'], /1-65535/],
    ['readyClasses too large', { readyClasses: 17 }, ['readyClasses'], /at most 16/]
  ])('rejects %s', (_name, extra, path, problem) => {
    const result = validateConfig({ ...minimal, ...extra })
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.path).toEqual(path)
    expect(result.problem).toMatch(problem)
  })

  it.each([
    ['a number', 60000, 60000],
    ['digits (from env)', '250', 250]
  ])('settleMs as %s is accepted', (_name, value, expected) => {
    const result = validateConfig({ ...minimal, settleMs: value })
    expect(result.ok && result.config.settleMs).toBe(expected)
  })

  it.each<[string, Record<string, unknown>, string[], RegExp | null]>([
    ['folder missing', { data: '/d' }, ['folder'], /required/],
    ['data missing', { folder: '/f' }, ['data'], /required/],
    ['empty folder', { ...minimal, folder: '' }, ['folder'], /empty/],
    ['an unknown key', { ...minimal, colour: 'blue' }, [], /unknown setting "colour"/],
    ['an unknown key inside ignore', { ...minimal, ignore: { paterns: [] } }, ['ignore'], /unknown setting "paterns"/],
    ['folder of the wrong type', { ...minimal, folder: 5 }, ['folder'], /string/],
    ['peers not a list', { ...minimal, peers: 'a:1' }, ['peers'], /array/],
    ['a bad listen address', { ...minimal, listen: 'nowhere' }, ['listen'], /no port/],
    ['the second peer bad', { ...minimal, peers: ['a.example:1', 'b.example'] }, ['peers', '1'], /no port/],
    ['settleMs "-5"', { ...minimal, settleMs: '-5' }, ['settleMs'], /at least 0/],
    ['settleMs -5', { ...minimal, settleMs: -5 }, ['settleMs'], /at least 0/],
    ['settleMs "abc"', { ...minimal, settleMs: 'abc' }, ['settleMs'], null],
    ['settleMs 60001', { ...minimal, settleMs: 60001 }, ['settleMs'], /at most 60000/],
    ['settleMs 1.5', { ...minimal, settleMs: 1.5 }, ['settleMs'], /whole number/],
    ['an unknown log level', { ...minimal, logLevel: 'loud' }, ['logLevel'], /info/],
    ['massDeleteShare above 1', { ...minimal, massDeleteShare: 1.5 }, ['massDeleteShare'], /at most 1/],
    ['massDeleteShare "half"', { ...minimal, massDeleteShare: 'half' }, ['massDeleteShare'], /between 0 and 1/],
    ['notServingAfterS 0', { ...minimal, notServingAfterS: 0 }, ['notServingAfterS'], /at least 1/],
    ['requestTimeoutS 1 (shorter than a busy peer may take)', { ...minimal, requestTimeoutS: 1 }, ['requestTimeoutS'], /at least 2/],
    ['watchdogS 5 (a busy loop may take that)', { ...minimal, watchdogS: 5 }, ['watchdogS'], /0 \(off\) or at least 10/],
    ['watchdogS "1m"', { ...minimal, watchdogS: '1m' }, ['watchdogS'], /whole number/],
    ['maxSendKiBps 4 (too low to keep a connection alive)', { ...minimal, maxSendKiBps: 4 }, ['maxSendKiBps'], /0 \(no limit\) or at least 8 KiB\/s/],
    ['maxRecvKiBps "1M"', { ...minimal, maxRecvKiBps: '1M' }, ['maxRecvKiBps'], /whole number/],
    ['maxRecvKiBps -1', { ...minimal, maxRecvKiBps: -1 }, ['maxRecvKiBps'], /at least 0/],
    ['a DHT node on 0.0.0.0', { ...minimal, dhtNode: '0.0.0.0:49737' }, ['dhtNode'], /IPv4 address other agents reach/],
    ['a DHT node on a hostname', { ...minimal, dhtNode: 'dht.example:49737' }, ['dhtNode'], /IPv4/],
    ['publicDht "maybe"', { ...minimal, publicDht: 'maybe' }, ['publicDht'], /true or false/],
    ['limitLan "lan"', { ...minimal, limitLan: 'lan' }, ['limitLan'], /true or false/],
    ['a malformed device id in allow', { ...minimal, allow: ['ABC'] }, ['allow', '0'], /device id/],
    ['an unknown preset', { ...minimal, ignore: { presets: ['drupal'] } }, ['ignore', 'presets', '0'], /wordpress/]
  ])('rejects %s', (_name, raw, path, problem) => {
    const result = failure(validateConfig(raw))
    expect(result.path).toEqual(path)
    if (problem) expect(result.problem).toMatch(problem)
  })

  it.each<[string, Record<string, unknown>, Record<string, unknown>]>([
    ['fileOwner "33:33"', { fileOwner: '33:33' }, { fileOwner: { uid: 33, gid: 33 } }],
    ['fileOwner " 0:1000 "', { fileOwner: ' 0:1000 ' }, { fileOwner: { uid: 0, gid: 1000 } }],
    ['fileMode "0644"', { fileMode: '0644' }, { fileMode: 0o644 }],
    ['fileMode "664"', { fileMode: '664' }, { fileMode: 0o664 }],
    ['fileMode "0o600"', { fileMode: '0o600' }, { fileMode: 0o600 }],
    ['dirMode "2775" (setgid)', { dirMode: '2775' }, { dirMode: 0o2775 }],
    ['dirMode "0755"', { dirMode: '0755' }, { dirMode: 0o755 }]
  ])('accepts %s', (_name, raw, expected) => {
    const result = validateConfig({ ...minimal, ...raw })
    expect(result.ok && result.config).toMatchObject(expected)
  })

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['a fileOwner name', { fileOwner: 'www-data:www-data' }, /expected uid:gid as numbers, e\.g\. "33:33", got "www-data:www-data"/],
    ['a fileOwner without gid', { fileOwner: '33' }, /expected uid:gid/],
    ['a negative uid', { fileOwner: '-1:33' }, /expected uid:gid/],
    ['a uid past uid_t', { fileOwner: '4294967295:0' }, /expected uid:gid/],
    ['fileMode as a bare number (YAML 0644)', { fileMode: 644 }, /in quotes, e\.g\. "0644" \(a bare number is ambiguous in YAML\), got 644/],
    ['fileMode with an 8', { fileMode: '0648' }, /expected an octal mode up to 0777/],
    ['fileMode with setuid', { fileMode: '4755' }, /up to 0777/],
    ['fileMode the owner cannot write', { fileMode: '0444' }, /at least 0600/],
    ['dirMode the owner cannot enter', { dirMode: '0644' }, /at least 0700/],
    ['dirMode with setuid', { dirMode: '4755' }, /up to 3777/]
  ])('rejects %s', (_name, raw, problem) => {
    const result = failure(validateConfig({ ...minimal, ...raw }))
    expect(result.path).toEqual(Object.keys(raw))
    expect(result.problem).toMatch(problem)
  })

  it.each([null, 'folder: x', ['folder']])('rejects a non-object (%j)', (raw) => {
    expect(validateConfig(raw).ok).toBe(false)
  })
})
