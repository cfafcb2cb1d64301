#!/usr/bin/env node
// Deterministic, seeded generator of a WordPress-like wp-content tree.
//
//   node bench/corpus.mjs DIR [--small-files N] [--uploads-mb N] [--seed S]
//
// Same options + seed => byte-identical tree (contents, names, sizes and mtimes).
// Layout (defaults: 7,500 small files + 300 MiB uploads, ~7,900 files, ~345 MiB):
//   index.php, object-cache.php            root drop-ins
//   themes/<3 themes>/...                  ~20% of small files (1-60 KiB, nested)
//   plugins/<30 plugins>/...               ~40% of small files
//   mu-plugins/*.php                       a few files
//   languages/{,plugins/,themes/}*.po|.mo  ~4% of small files
//   uploads/YYYY/MM/name[-WxH].jpg         images (--uploads-mb); each in 3-4 WordPress sizes
//   uploads/{elementor,wpforms,YYYY/MM}/   the remaining small files (page-builder CSS,
//                                          form JSON, small PDFs/SVGs/PNGs/DOCX)
// Nothing in the tree matches sync-agent's default `wordpress` ignore preset
// (cache/, upgrade/, *.log, ...), so every tool syncs the same files.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const KiB = 1024;
const MiB = 1024 * 1024;

export const DEFAULTS = Object.freeze({ shape: 'wordpress', smallFiles: 7500, uploadsMb: 300, seed: 1 });
/**
 * Corpus shapes: `wordpress` (the default wp-content), `many-small` (`--small-files` files of
 * 4 KiB, 100,000 unless given, 500 per directory), `big-file` (one file of `--big-mb` MiB,
 * 2048 unless given).
 */
export const SHAPES = ['wordpress', 'many-small', 'big-file'];
const MANY_SMALL = { files: 100_000, size: 4 * 1024, perDir: 500 };
const BIG_FILE_MB = 2048;

// ---------------------------------------------------------------- PRNG
// xoshiro128** seeded by splitmix32; all 32-bit integer arithmetic.
function splitmix32(a) {
  return () => {
    a = (a + 0x9e3779b9) | 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function seedToInt(seed) {
  // Numbers are used as-is, strings are hashed (FNV-1a).
  if (typeof seed === 'number' && Number.isFinite(seed)) return seed >>> 0;
  let h = 0x811c9dc5;
  for (const ch of String(seed)) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193);
  return h >>> 0;
}

class Rng {
  constructor(seed) {
    const sm = splitmix32(seedToInt(seed));
    this.s = new Uint32Array([sm(), sm(), sm(), sm()]);
    if (!(this.s[0] | this.s[1] | this.s[2] | this.s[3])) this.s[0] = 1;
  }
  u32() {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }
  float() { return this.u32() / 4294967296; }
  int(lo, hi) { return lo + Math.floor(this.float() * (hi - lo + 1)); } // inclusive
  pick(arr) { return arr[this.u32() % arr.length]; }
  // log-uniform in [lo, hi]
  logUniform(lo, hi) { return Math.round(Math.exp(Math.log(lo) + this.float() * (Math.log(hi) - Math.log(lo)))); }
  // Fill a buffer with pseudo-random bytes; a local xorshift128 stream seeded
  // from this generator keeps the hot loop tight (~1 GB/s).
  fill(buf) {
    let a = this.u32() | 1, b = this.u32(), c = this.u32(), d = this.u32();
    const words = buf.length >>> 2;
    const u32 = new Uint32Array(buf.buffer, buf.byteOffset, words);
    // Uint32Array requires 4-byte alignment of byteOffset; callers allocate fresh buffers.
    for (let i = 0; i < words; i++) {
      let t = a ^ (a << 11);
      a = b; b = c; c = d;
      d = (d ^ (d >>> 19)) ^ (t ^ (t >>> 8));
      u32[i] = d;
    }
    for (let i = words << 2; i < buf.length; i++) buf[i] = this.u32() & 0xff;
    return buf;
  }
}
function rotl(x, k) { return (x << k) | (x >>> (32 - k)); }

// ---------------------------------------------------------------- content
const WORDS = ('the of and to in is that for it as with was on be by this are from at or an have ' +
  'post page user admin option meta query cache term taxonomy comment widget block editor theme plugin ' +
  'render settings field value data request response nonce ajax hook filter action template header footer ' +
  'sidebar menu image thumbnail gallery product order cart checkout customer price shipping payment').split(' ');

const TOKENS = {
  php: ['$', 'function ', 'return ', 'if ( ', ' ) {', '}', '\n', '\n\t', '\n\t\t', ' = ', '; ', '( ', ' )', '->', '::',
    "'", 'array( ', ' => ', 'esc_html( ', 'esc_attr( ', '__( ', "'text-domain' )", 'apply_filters( ', 'do_action( ',
    'add_action( ', 'get_option( ', 'wp_enqueue_script( ', 'public ', 'private ', 'static ', 'new ', 'null', 'true',
    'false', 'isset( ', 'empty( ', 'foreach ( ', ' as ', ' . ', '// ', ' * ', '/**', ' */', '_', 'wp_', 'get_', 'the_'],
  css: ['.', '#', ' {', '\n\t', '}\n', ': ', '; ', 'px', 'em', 'rem', '%', 'color', 'background', 'margin', 'padding',
    'display', 'flex', 'grid', 'font-size', 'line-height', 'border', 'solid', 'none', 'auto', '0', '1', '2', '4', '8',
    '#fff', '#000', 'rgba(0,0,0,.5)', '-', '__', ' > ', ', ', '@media (max-width: 768px) {\n', 'var(--wp--preset--', ')'],
  js: ['const ', 'let ', 'function', '(', ')', ' => ', '{', '}', '\n', '\n\t', '; ', '.', ', ', ' = ', 'return ',
    'document', 'window', 'jQuery', 'addEventListener', "'click'", 'querySelector', 'this', 'if (', 'else', 'null',
    'undefined', '===', '!==', '&&', '||', '[', ']', 'wp.', 'element', 'props', 'attributes', 'setAttributes'],
  html: ['<div class="', '">', '</div>\n', '<p>', '</p>\n', '<a href="/', '/">', '</a>', '<span>', '</span>',
    '<li>', '</li>\n', '<img src="/wp-content/uploads/', '.jpg" alt="', '" />', '\n', '\t', ' ', 'wp-block-', 'entry-'],
  po: ['msgid "', 'msgstr "', '"\n', '\n', '#: ', '.php:', '#, php-format\n', 'msgctxt "', '%s', '%d', ' '],
  txt: ['\n', '\n\n', '== ', ' ==', '* ', ' ', '. ', ', ', 'Version ', 'Requires at least: ', 'Tested up to: ', 'Stable tag: '],
};
const WORD_BUFS = WORDS.map((w) => Buffer.from(w));
const TOKEN_BUFS = Object.fromEntries(Object.entries(TOKENS).map(([k, v]) => [k, v.map((t) => Buffer.from(t))]));

// Text: unique header + a token/word stream cut to exactly `size` bytes.
function textContent(rng, kind, header, size) {
  const out = Buffer.allocUnsafe(size);
  const head = Buffer.from(header);
  let pos = head.copy(out, 0, 0, Math.min(head.length, size));
  const toks = TOKEN_BUFS[kind] ?? TOKEN_BUFS.txt;
  while (pos < size) {
    const r = rng.u32();
    const src = (r & 3) === 0 ? toks[(r >>> 2) % toks.length] : WORD_BUFS[(r >>> 2) % WORD_BUFS.length];
    const n = Math.min(src.length, size - pos);
    if (n === src.length) out.set(src, pos); else src.copy(out, pos, 0, n);
    pos += n;
    if ((r >>> 28) === 0 && pos < size) out[pos++] = 0x20; // occasional extra space
  }
  return out;
}

const MAGIC = {
  png: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  jpg: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]),
  gif: Buffer.from('GIF89a'),
  woff2: Buffer.from('wOF2'),
  mo: Buffer.from([0xde, 0x12, 0x04, 0x95]),
  webp: Buffer.from('RIFF\0\0\0\0WEBPVP8 '),
  pdf: Buffer.from('%PDF-1.7\n'),
  docx: Buffer.from([0x50, 0x4b, 0x03, 0x04]),
};
// Binary (incompressible, like JPEG/PNG/WOFF2 data): magic + random bytes.
function binaryContent(rng, ext, size) {
  const out = rng.fill(Buffer.allocUnsafeSlow(size));
  const magic = MAGIC[ext];
  if (magic) magic.copy(out, 0, 0, Math.min(magic.length, size));
  if (ext === 'jpg' && size >= 4) { out[size - 2] = 0xff; out[size - 1] = 0xd9; }
  return out;
}

const TEXT_KIND = { php: 'php', css: 'css', js: 'js', json: 'js', html: 'html', po: 'po', pot: 'po', txt: 'txt', md: 'txt', svg: 'html', xml: 'html' };

// ---------------------------------------------------------------- layout
const THEMES = [['twentytwentyfour', 0.2], ['twentytwentythree', 0.13], ['astra', 0.67]];
const PLUGINS = ['woocommerce', 'jetpack', 'elementor', 'wordpress-seo', 'wordfence', 'advanced-custom-fields',
  'all-in-one-wp-migration', 'updraftplus', 'wpforms-lite', 'google-site-kit', 'litespeed-cache', 'w3-total-cache',
  'contact-form-7', 'polylang', 'mailchimp-for-wp', 'wp-mail-smtp', 'really-simple-ssl', 'redirection',
  'ewww-image-optimizer', 'wp-smushit', 'query-monitor', 'tablepress', 'wp-optimize', 'wp-super-cache',
  'cookie-notice', 'duplicate-post', 'regenerate-thumbnails', 'redis-cache', 'classic-editor', 'akismet'];

const THEME_DIRS = [['', ['php', 'php', 'php', 'css', 'txt']], ['inc', ['php']], ['inc/customizer', ['php']],
  ['template-parts', ['php']], ['template-parts/content', ['php']], ['templates', ['html']], ['parts', ['html']],
  ['patterns', ['php']], ['styles', ['json']], ['assets/css', ['css']], ['assets/css/minified', ['css']],
  ['assets/js', ['js']], ['assets/js/minified', ['js']], ['assets/images', ['png', 'jpg', 'svg', 'gif']],
  ['assets/fonts', ['woff2']], ['languages', ['pot']], ['inc/compatibility', ['php']], ['blocks', ['js', 'css', 'php']]];
const PLUGIN_DIRS = [['', ['php', 'txt']], ['includes', ['php']], ['includes/admin', ['php']], ['includes/admin/views', ['php']],
  ['includes/rest-api/Controllers/Version3', ['php']], ['src', ['php']], ['src/Internal', ['php']], ['templates', ['php']],
  ['templates/emails', ['php']], ['assets/css', ['css']], ['assets/js', ['js']], ['assets/js/frontend', ['js']],
  ['assets/images', ['png', 'svg']], ['languages', ['pot']], ['vendor/composer', ['php']],
  ['vendor/symfony/polyfill-mbstring', ['php']], ['build', ['js', 'css', 'json']], ['lib', ['php']]];

// Weighted toward small text files: 1 KiB .. 60 KiB, median ~1.9 KiB, mean ~5.5 KiB.
function smallSize(rng) {
  const u = rng.float();
  return Math.max(KiB, Math.min(60 * KiB, Math.round(KiB * Math.pow(60, u * u * u * Math.sqrt(u)))));
}

function uniqueName(rng, used, ext, prefix = '') {
  for (let i = 0; ; i++) {
    const base = rng.pick(WORDS) + '-' + rng.pick(WORDS) + (i > 2 ? '-' + i : '');
    const name = `${prefix}${base}.${ext}`;
    if (!used.has(name)) { used.add(name); return name; }
  }
}

// Plan: list of { path, size, gen(rng) -> Buffer }; content is generated at write time.
function planSmallPackage(rng, plan, root, count, dirs, pkg) {
  const used = new Set();
  const fixed = root.startsWith('themes/') ? ['style.css', 'functions.php', 'index.php', 'screenshot.png']
    : [`${pkg}.php`, 'readme.txt', 'uninstall.php'];
  for (let i = 0; i < count; i++) {
    let rel;
    if (i < fixed.length) { rel = fixed[i]; used.add(rel); }
    else {
      const [dir, exts] = rng.pick(dirs);
      rel = uniqueName(rng, used, rng.pick(exts), dir ? dir + '/' : '');
    }
    plan.push(fileEntry(rng, `${root}/${rel}`, ext(rel), pkg));
  }
}
function ext(p) { return p.slice(p.lastIndexOf('.') + 1); }

function fileEntry(rng, relPath, extension, pkg, size = smallSize(rng)) {
  const kind = TEXT_KIND[extension];
  const header = kind === 'php' ? `<?php\n/**\n * ${relPath}\n *\n * @package ${pkg}\n */\n\n`
    : kind === 'css' ? `/*\n * ${relPath} (${pkg})\n */\n`
    : kind === 'js' ? `/* ${pkg}: ${relPath} */\n`
    : kind === 'po' ? `# ${pkg}\nmsgid ""\nmsgstr ""\n"Project-Id-Version: ${pkg}\\n"\n`
    : kind ? `<!-- ${relPath} -->\n` : '';
  return { path: relPath, size, kind: kind ?? extension, header };
}

function planManySmall(count) {
  const plan = [];
  for (let i = 0; i < count; i++) {
    const dir = `uploads/many/d${String(Math.floor(i / MANY_SMALL.perDir)).padStart(4, '0')}`;
    plan.push({ path: `${dir}/f${String(i).padStart(6, '0')}.bin`, size: MANY_SMALL.size, kind: 'bin', header: '' });
  }
  return plan;
}

function planShape({ shape, smallFiles, uploadsMb, bigMb, seed }, explicit) {
  if (shape === 'many-small') return planManySmall(explicit.smallFiles ? smallFiles : MANY_SMALL.files);
  if (shape === 'big-file') return [{ path: 'uploads/big/video.mp4', size: Math.round((bigMb ?? BIG_FILE_MB) * MiB), kind: 'mp4', header: '' }];
  if (shape !== 'wordpress') throw new Error(`unknown corpus shape ${shape} (known: ${SHAPES.join(', ')})`);
  return planCorpus({ smallFiles, uploadsMb, seed });
}

function planCorpus({ smallFiles, uploadsMb, seed }) {
  const rng = new Rng(seed);
  const plan = [];
  const n = Math.max(20, Math.floor(smallFiles));
  // root drop-ins
  plan.push(fileEntry(rng, 'index.php', 'php', 'wordpress', 28));
  plan.push(fileEntry(rng, 'object-cache.php', 'php', 'redis-cache', 24 * KiB));
  let left = n - 2;
  // mu-plugins: a few
  const nMu = Math.min(5, Math.max(1, Math.round(n * 0.001)));
  for (let i = 0; i < nMu; i++) plan.push(fileEntry(rng, `mu-plugins/${['00-loader', 'site-config', 'disable-emojis', 'hosting-tweaks', 'security-headers'][i]}.php`, 'php', 'mu'));
  left -= nMu;
  // languages
  const nLang = Math.round(n * 0.04);
  const langUsed = new Set();
  for (let i = 0; i < nLang; i++) {
    const sub = rng.pick(['', 'plugins/', 'themes/']);
    const locale = rng.pick(['de_DE', 'fr_FR', 'es_ES', 'nl_NL', 'it_IT', 'pt_BR', 'ja', 'pl_PL']);
    const domain = sub === 'plugins/' ? rng.pick(PLUGINS) : sub === 'themes/' ? rng.pick(THEMES)[0] : rng.pick(['admin', 'admin-network', 'continents-cities', 'default']);
    let base = `${sub}${domain}-${locale}`;
    for (let k = 2; langUsed.has(base); k++) base = `${sub}${domain}-${locale}-${k}`;
    langUsed.add(base);
    // one .po + one .mo per translation (last one may be .po only)
    const poSize = rng.logUniform(4 * KiB, 64 * KiB);
    plan.push(fileEntry(rng, `languages/${base}.po`, 'po', domain, poSize));
    if (++i < nLang) plan.push(fileEntry(rng, `languages/${base}.mo`, 'mo', domain, Math.round(poSize * 0.7)));
  }
  left -= nLang;
  // themes ~20%
  const nThemes = Math.round(n * 0.2);
  let given = 0;
  THEMES.forEach(([name, w], i) => {
    const c = i === THEMES.length - 1 ? nThemes - given : Math.round(nThemes * w);
    given += c;
    planSmallPackage(rng, plan, `themes/${name}`, c, THEME_DIRS, name);
  });
  left -= nThemes;
  // plugins ~40%, Zipf-ish weights
  const nPlugins = Math.round(n * 0.4);
  const weights = PLUGINS.map((_, i) => 1 / (i + 1.5));
  const wsum = weights.reduce((a, b) => a + b, 0);
  given = 0;
  PLUGINS.forEach((name, i) => {
    const c = i === PLUGINS.length - 1 ? nPlugins - given : Math.max(3, Math.round(nPlugins * weights[i] / wsum));
    given += c;
    planSmallPackage(rng, plan, `plugins/${name}`, Math.max(0, c), PLUGIN_DIRS, name);
  });
  left -= nPlugins;
  // the remainder: small files in uploads/ (page-builder CSS, form exports, documents)
  const upSmall = new Set();
  for (let i = 0; i < left; i++) {
    const r = rng.float();
    let name;
    if (r < 0.5) name = `uploads/elementor/css/post-${rng.int(10, 99999)}.css`;
    else if (r < 0.6) name = `uploads/elementor/google-fonts/css/${rng.pick(WORDS)}-${rng.pick(WORDS)}.css`;
    else if (r < 0.7) name = `uploads/wpforms/${rng.int(1, 40)}-${rng.pick(WORDS)}/${rng.pick(WORDS)}-${rng.int(100, 999)}.json`;
    else {
      const d = `uploads/${rng.int(2019, 2024)}/${String(rng.int(1, 12)).padStart(2, '0')}`;
      name = `${d}/${rng.pick(WORDS)}-${rng.pick(WORDS)}-${rng.int(1, 99)}.${rng.pick(['pdf', 'pdf', 'svg', 'png', 'docx'])}`;
    }
    if (upSmall.has(name)) { i--; continue; }
    upSmall.add(name);
    plan.push(fileEntry(rng, name, ext(name), 'uploads'));
  }
  // uploads: image sets until the byte budget is used up
  let budget = Math.max(0, Math.round(uploadsMb * MiB));
  const upUsed = new Set();
  let year = 2019, month = 1, perMonth = 0;
  while (budget >= 50 * KiB) {
    if (perMonth >= 4 + (rng.u32() % 6)) { perMonth = 0; if (++month > 12) { month = 1; year++; } }
    perMonth++;
    const dir = `uploads/${year}/${String(month).padStart(2, '0')}`;
    let base;
    do base = `${dir}/${rng.pick(['img', 'dsc', 'photo', 'banner', 'hero', 'product', 'team', 'screenshot'])}_${rng.int(1000, 9999)}`; while (upUsed.has(base));
    upUsed.add(base);
    const orig = rng.logUniform(600 * KiB, 5 * MiB);
    const sizes = [['', orig], ['-1024x768', Math.min(orig, rng.int(100 * KiB, 350 * KiB))],
      ['-300x200', rng.int(50 * KiB, 90 * KiB)], ['-150x150', rng.int(50 * KiB, 64 * KiB)]];
    for (const [suffix, size0] of sizes) {
      if (budget < 50 * KiB) break;
      // the last file takes the remainder when less than one more thumbnail would fit
      const size = budget - size0 < 50 * KiB ? budget : Math.min(size0, budget);
      if (suffix === '-1024x768' && orig < 700 * KiB) continue; // small originals get no large size
      plan.push({ path: `${base}${suffix}.jpg`, size, kind: 'jpg', header: '' });
      budget -= size;
    }
  }
  return plan;
}

// ---------------------------------------------------------------- write
const EPOCH = Date.UTC(2024, 0, 1) / 1000;

export async function generateCorpus(dir, opts = {}) {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const { shape, smallFiles, uploadsMb, bigMb, seed } = { ...DEFAULTS, ...given };
  const plan = planShape({ shape, smallFiles, uploadsMb, bigMb, seed }, given);
  const rng = new Rng(`${seed}/content`);
  fs.mkdirSync(dir, { recursive: true });
  if (fs.readdirSync(dir).length) throw new Error(`corpus dir ${dir} is not empty`);
  const madeDirs = new Set();
  let bytes = 0;
  const entries = [];
  for (const f of plan) {
    const abs = path.join(dir, f.path);
    const d = path.dirname(abs);
    if (!madeDirs.has(d)) { fs.mkdirSync(d, { recursive: true }); madeDirs.add(d); }
    if (f.size > 64 * MiB) writeLarge(rng, abs, f.size);
    else fs.writeFileSync(abs, TEXT_KIND[f.kind] || TOKEN_BUFS[f.kind] ? textContent(rng, f.kind, f.header, f.size) : binaryContent(rng, f.kind, f.size));
    const t = EPOCH + (rng.u32() % (86400 * 365));
    fs.utimesSync(abs, t, t);
    bytes += f.size;
    entries.push({ path: f.path, size: f.size });
  }
  return { dir, files: plan.length, bytes, entries, options: { shape, smallFiles, uploadsMb, bigMb, seed } };
}

/** A file too large for one buffer: written in 16 MiB pieces of seeded random bytes. */
function writeLarge(rng, abs, size) {
  const fd = fs.openSync(abs, 'w');
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(16 * MiB, size - done);
      fs.writeSync(fd, binaryContent(rng, 'bin', n));
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------- CLI
export function parseCorpusArgs(argv, into = {}) {
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { const v = a.includes('=') ? a.split('=').slice(1).join('=') : argv[++i]; if (v === undefined) throw new Error(`${a} needs a value`); return v; };
    if (a.startsWith('--small-files')) into.smallFiles = Number(val());
    else if (a.startsWith('--shape')) { into.shape = val(); if (!SHAPES.includes(into.shape)) throw new Error(`bad --shape ${into.shape} (known: ${SHAPES.join(', ')})`); }
    else if (a.startsWith('--big-mb')) into.bigMb = Number(val());
    else if (a.startsWith('--uploads-mb')) into.uploadsMb = Number(val());
    else if (a.startsWith('--seed')) { const v = val(); into.seed = /^\d+$/.test(v) ? Number(v) : v; }
    else rest.push(a);
  }
  for (const k of ['smallFiles', 'uploadsMb', 'bigMb']) if (into[k] !== undefined && !(into[k] >= 0)) throw new Error(`bad --${k}: ${into[k]}`);
  return { opts: into, rest };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  try {
    const { opts, rest } = parseCorpusArgs(process.argv.slice(2));
    if (rest.length !== 1 || rest[0].startsWith('-')) {
      console.error('usage: node bench/corpus.mjs DIR [--shape wordpress|many-small|big-file] [--small-files N] [--uploads-mb N] [--big-mb N] [--seed S]');
      process.exit(2);
    }
    const t0 = performance.now();
    const c = await generateCorpus(rest[0], opts);
    const s = (performance.now() - t0) / 1000;
    console.log(`${c.dir}: ${c.files} files, ${(c.bytes / MiB).toFixed(1)} MiB in ${s.toFixed(2)} s (seed ${c.options.seed})`);
  } catch (e) {
    console.error(`corpus: ${e.message}`);
    process.exit(1);
  }
}
