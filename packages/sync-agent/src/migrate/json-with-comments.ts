import { SyncError } from '@sync-agent/shared'

/**
 * BitTorrent Sync / Resilio `sync.conf` is JSON with `//` and `/* *\/` comments (the sample
 * config the packages ship is full of them) and, when edited by hand, the odd trailing comma.
 * Comments and trailing commas are blanked out with spaces (newlines kept), so the positions
 * `JSON.parse` reports still point into the original text and errors can say line:column.
 */
export function stripJsonComments(text: string): string {
  const out = text.split('')
  let i = 0
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== '\n' && out[k] !== '\r') out[k] = ' '
  }
  while (i < text.length) {
    const ch = text[i]
    if (ch === '"') {
      i = afterString(text, i)
    } else if (ch === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i)
      const stop = end === -1 ? text.length : end
      blank(i, stop)
      i = stop
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2)
      if (end === -1) throw new JsonTextError('a /* comment is never closed', i)
      blank(i, end + 2)
      i = end + 2
    } else {
      i++
    }
  }
  return removeTrailingCommas(out.join(''))
}

/** Index just past the string that starts at `start` (a `"`), honouring escapes. */
function afterString(text: string, start: number): number {
  let i = start + 1
  while (i < text.length && text[i] !== '"' && text[i] !== '\n') i += text[i] === '\\' ? 2 : 1
  return i + 1
}

/** `[1, 2,]` and `{"a": 1,}`: the comma becomes a space (comments are already blank). */
function removeTrailingCommas(text: string): string {
  const out = text.split('')
  let i = 0
  while (i < text.length) {
    const ch = text[i]
    if (ch === '"') {
      i = afterString(text, i)
      continue
    }
    if (ch === ',') {
      let k = i + 1
      while (k < text.length && /\s/.test(text[k] as string)) k++
      if (text[k] === '}' || text[k] === ']') out[i] = ' '
    }
    i++
  }
  return out.join('')
}

class JsonTextError extends Error {
  constructor(
    message: string,
    readonly position: number
  ) {
    super(message)
  }
}

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, position: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, position))
  const line = before.split('\n').length
  const column = position - (before.lastIndexOf('\n') + 1) + 1
  return { line, column }
}

/** Parses JSON with comments; a syntax error becomes an E_CONFIG naming `file:line:column`. */
export function parseJsonWithComments(text: string, file: string): unknown {
  const withoutBom = text.charCodeAt(0) === 0xfeff ? ' ' + text.slice(1) : text
  let cleaned: string
  try {
    cleaned = stripJsonComments(withoutBom)
  } catch (err) {
    if (!(err instanceof JsonTextError)) throw err
    const { line, column } = lineColumn(withoutBom, err.position)
    throw new SyncError('E_CONFIG', `${file}:${line}:${column}: ${err.message}`, { details: { file } })
  }
  if (cleaned.trim() === '') throw new SyncError('E_CONFIG', `${file} is empty`, { details: { file } })
  try {
    return JSON.parse(cleaned)
  } catch (err) {
    const message = (err as Error).message
    // Node 20: "Unexpected token } in JSON at position 42"; newer: "... (line 3 column 5)"
    const at = /at position (\d+)/.exec(message)
    const where = at ? lineColumn(withoutBom, Number(at[1])) : null
    const problem = message.replace(/ in JSON at position \d+.*$/, '').replace(/^JSON\.parse: /, '')
    const prefix = where ? `${file}:${where.line}:${where.column}` : file
    throw new SyncError('E_CONFIG', `${prefix}: not valid JSON (${problem})`, { cause: err, details: { file } })
  }
}
