import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'

/**
 * A small wp-content: themes, plugins, mu-plugins, languages and root drop-ins (the
 * critical class), uploads in year/month folders with mtimes that follow the months, and a
 * few other files. Contents are random, so a missing or wrong byte shows.
 */
export interface WpCorpus {
  /** themes/, plugins/, mu-plugins/, languages/ and root *.php */
  critical: string[]
  /** uploads, oldest month first */
  uploads: Array<{ path: string; month: number; size: number }>
  other: string[]
}

export interface WpCorpusOptions {
  themes?: number
  filesPerTheme?: number
  plugins?: number
  filesPerPlugin?: number
  months?: number
  uploadsPerMonth?: number
  uploadBytes?: number
}

async function put(root: string, rel: string, content: Buffer | string, mtimeS?: number): Promise<void> {
  const abs = path.join(root, rel)
  await fs.mkdir(path.dirname(abs), { recursive: true })
  await fs.writeFile(abs, content)
  if (mtimeS !== undefined) await fs.utimes(abs, mtimeS, mtimeS)
}

export async function writeWpCorpus(root: string, o: WpCorpusOptions = {}): Promise<WpCorpus> {
  const { themes = 3, filesPerTheme = 150, plugins = 6, filesPerPlugin = 120, months = 24, uploadsPerMonth = 4, uploadBytes = 1536 * 1024 } = o
  const critical: string[] = []
  const exts = ['php', 'css', 'js', 'svg', 'json']
  const small = (i: number) => `/* ${i} */\n` + randomBytes(200 + (i % 1200)).toString('base64')
  for (let t = 0; t < themes; t++) {
    for (let i = 0; i < filesPerTheme; i++) critical.push(`themes/theme${t}/${i % 4 === 0 ? '' : `parts/p${i % 7}/`}f${i}.${exts[i % exts.length]}`)
    critical.push(`themes/theme${t}/style.css`)
  }
  for (let p = 0; p < plugins; p++) for (let i = 0; i < filesPerPlugin; i++) critical.push(`plugins/plugin${p}/${i % 3 === 0 ? 'inc/' : 'assets/'}f${i}.${exts[i % exts.length]}`)
  critical.push('mu-plugins/loader.php', 'languages/de_DE.mo', 'languages/fr_FR.mo', 'object-cache.php', 'advanced-cache.php')
  let n = 0
  for (const rel of critical) await put(root, rel, small(n++))
  const uploads: WpCorpus['uploads'] = []
  const firstMonth = new Date(Date.UTC(2024, 0, 15)).getTime() / 1000
  for (let m = 0; m < months; m++) {
    const year = 2024 + Math.floor(m / 12)
    const month = (m % 12) + 1
    const mm = String(month).padStart(2, '0')
    for (let i = 0; i < uploadsPerMonth; i++) {
      const rel = `uploads/${year}/${mm}/image-${m}-${i}.jpg`
      const size = uploadBytes + i * 1021
      await put(root, rel, randomBytes(size), firstMonth + m * 30 * 86400 + i * 60)
      uploads.push({ path: rel, month: year * 100 + month, size })
    }
  }
  const other = ['blogs.dir/readme.txt', 'fonts/a.woff2', 'backup-db/notes.txt']
  for (const rel of other) await put(root, rel, small(n++))
  return { critical, uploads, other }
}
