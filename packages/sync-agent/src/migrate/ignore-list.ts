/**
 * Resilio's `.sync/IgnoreList` → gitignore patterns (our `ignore.patterns`). The IgnoreList is
 * one name or path per line, `#` comments, `*` and `?` wildcards; a name matches at any depth
 * and a path with a `/` is relative to the folder root, which is what gitignore does too.
 * What differs: gitignore gives `!` (negation), `[` (class) and a leading `#` meaning, and
 * Windows-made lists use backslashes.
 */
export const RESILIO_DIR_PATTERN = '/.sync/'

export interface ConvertedIgnoreList {
  patterns: string[]
  /** lines we could not carry over, with why */
  skipped: Array<{ line: number; text: string; why: string }>
}

export function convertIgnoreList(text: string): ConvertedIgnoreList {
  const patterns: string[] = []
  const skipped: ConvertedIgnoreList['skipped'] = []
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  lines.forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    if (line.includes('\0')) {
      skipped.push({ line: i + 1, text: line.replace(/\0/g, '\\0'), why: 'contains a NUL byte' })
      return
    }
    let pattern = line.replace(/\\/g, '/').replace(/\/{2,}/g, '/')
    if (/^[A-Za-z]:\//.test(pattern)) {
      skipped.push({ line: i + 1, text: line, why: 'an absolute Windows path; write it relative to the folder' })
      return
    }
    pattern = pattern.replace(/\[/g, '\\[')
    if (pattern.startsWith('!')) pattern = '\\' + pattern
    if (pattern === '/' || pattern === '*' || pattern === '/*') {
      skipped.push({ line: i + 1, text: line, why: 'would ignore the whole folder' })
      return
    }
    if (!patterns.includes(pattern)) patterns.push(pattern)
  })
  return { patterns, skipped }
}
