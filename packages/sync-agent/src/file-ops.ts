import { closeSync, fchmodSync, fchownSync, fstatSync, futimesSync, linkSync, open as openCallback, readSync, renameSync, unlinkSync, writeSync, type Stats } from 'node:fs'
import { link, open, rename, unlink } from 'node:fs/promises'
import { promisify } from 'node:util'

/**
 * The file operations the folder writer places a file with, in two forms: on libuv's thread
 * pool (any size), or synchronously for small files. A fresh node writes thousands of small
 * files, ~8 operations each; in the promise form each cost the main thread a thread-pool hop
 * and a promise (the writer was 21% of a fresh node's CPU, most of it in open, write, futimes,
 * fstat, close, link and unlink), where the system call itself takes a few µs on a local disk.
 * Except creating the file: open(O_CREAT) waited ~340 µs per file there (the kernel allocating
 * inodes while the sync writes hundreds of MiB), so it stays on the thread pool, where four of
 * them wait at once while the main thread works.
 */
export interface WritableFile {
  write(buf: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>
  chown(uid: number, gid: number): Promise<void>
  chmod(mode: number): Promise<void>
  utimes(atime: number | Date, mtime: number | Date): Promise<void>
  stat(): Promise<Stats>
  close(): Promise<void>
}

export interface FileOps {
  open(path: string, flags: string, mode?: number): Promise<WritableFile>
  link(existing: string, name: string): Promise<void>
  unlink(path: string): Promise<void>
  rename(from: string, to: string): Promise<void>
}

export const threadPoolOps: FileOps = { open, link, unlink, rename }

/** A file descriptor used synchronously, closed once (a second close could hit a reused fd). */
class SyncFile implements WritableFile {
  private fd: number | null

  constructor(fd: number) {
    this.fd = fd
  }

  private get open(): number {
    if (this.fd === null) throw Object.assign(new Error('file already closed'), { code: 'EBADF' })
    return this.fd
  }

  async write(buf: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }> {
    return { bytesWritten: writeSync(this.open, buf, offset, length) }
  }

  async read(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return { bytesRead: readSync(this.open, buf, offset, length, position) }
  }

  async chown(uid: number, gid: number): Promise<void> {
    fchownSync(this.open, uid, gid)
  }

  async chmod(mode: number): Promise<void> {
    fchmodSync(this.open, mode)
  }

  async utimes(atime: number | Date, mtime: number | Date): Promise<void> {
    futimesSync(this.open, atime, mtime)
  }

  async stat(): Promise<Stats> {
    return fstatSync(this.open)
  }

  async close(): Promise<void> {
    const fd = this.open
    this.fd = null
    closeSync(fd)
  }
}

const openFd = promisify(openCallback)

export const synchronousOps: FileOps = {
  open: async (path, flags, mode) => new SyncFile(await openFd(path, flags, mode)),
  link: async (existing, name) => linkSync(existing, name),
  unlink: async (path) => unlinkSync(path),
  rename: async (from, to) => renameSync(from, to)
}
