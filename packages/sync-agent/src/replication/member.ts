import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sign, verify, type FolderKeys } from '@sync-agent/shared'
import { replaceFile } from '../state-file.js'

/**
 * A member is a writer: a device and the drive it writes. It is admitted only with a
 * signature by the folder's writer key, which only read-write secrets can make; the
 * signature travels with the member list, so a member heard of through any peer is checked.
 */
export interface Member {
  deviceKey: Buffer
  driveKey: Buffer
  signature: Buffer
}

function statement(deviceKey: Uint8Array, driveKey: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from('sync-agent/v1/member\0'), deviceKey, driveKey])
}

export function signMember(keys: FolderKeys, deviceKey: Buffer, driveKey: Buffer): Member | null {
  if (!keys.writerKeyPair) return null
  return { deviceKey, driveKey, signature: sign(statement(deviceKey, driveKey), keys.writerKeyPair.secretKey) }
}

export function verifyMember(keys: FolderKeys, member: Member): boolean {
  return (
    member.deviceKey.length === 32 &&
    member.driveKey.length === 32 &&
    verify(member.signature, statement(member.deviceKey, member.driveKey), keys.writerPublicKey)
  )
}

export const MAX_MEMBERS = 256

/**
 * Screens a member list heard from a peer: the new ones with a valid writer proof, up to the
 * member limit, and how many were forged (each logged). `known` says which drives we follow.
 */
export function screenMembers(
  keys: FolderKeys,
  members: readonly Member[],
  known: (driveHex: string) => boolean,
  count: number,
  from: string,
  log: { warn(fields: object, msg: string): void }
): { fresh: Member[]; rejected: number } {
  const fresh: Member[] = []
  let rejected = 0
  for (const member of members) {
    const hex = member.driveKey.toString('hex')
    if (known(hex) || fresh.some((m) => m.driveKey.equals(member.driveKey))) continue
    if (!verifyMember(keys, member)) {
      log.warn({ code: 'E_PEER_PROTOCOL', peer: from, drive: hex.slice(0, 16) }, 'rejected a member without a valid writer proof')
      rejected++
      continue
    }
    if (count + fresh.length >= MAX_MEMBERS) {
      log.warn({ code: 'E_PEER_PROTOCOL', peer: from }, 'member limit reached; ignoring further members')
      break
    }
    fresh.push(member)
  }
  return { fresh, rejected }
}

const MEMBERS_FILE = 'members.json'

/** The members saved in the data dir, re-verified (a tampered file adds no writer). */
export async function loadMembers(dataDir: string, keys: FolderKeys): Promise<Member[]> {
  let text: string
  try {
    text = await readFile(join(dataDir, MEMBERS_FILE), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const rows = JSON.parse(text) as Array<{ deviceKey: string; driveKey: string; signature: string }>
  return onePerDrive(
    rows
      .map((r) => ({ deviceKey: Buffer.from(r.deviceKey, 'hex'), driveKey: Buffer.from(r.driveKey, 'hex'), signature: Buffer.from(r.signature, 'hex') }))
      .filter((m) => verifyMember(keys, m))
  )
}

/**
 * The first of each drive key. A list saved while a member was both open and still counted as
 * opening held it twice, and a drive opened twice in one Corestore never finished its second
 * open: after a kill -9 the restart hung there and node exited (code 13; fault suite seeds
 * 1101, 1181, 1195, 1250). Lists on disk may still hold such duplicates.
 */
export function onePerDrive(members: readonly Member[]): Member[] {
  const seen = new Set<string>()
  return members.filter((m) => {
    const hex = m.driveKey.toString('hex')
    if (seen.has(hex)) return false
    seen.add(hex)
    return true
  })
}

/** Saves the member list (state-file.ts: temp file + rename, one save of a data dir at a time). */
export function saveMembers(dataDir: string, members: readonly Member[]): Promise<void> {
  const rows = onePerDrive(members).map((m) => ({ deviceKey: m.deviceKey.toString('hex'), driveKey: m.driveKey.toString('hex'), signature: m.signature.toString('hex') }))
  return replaceFile(join(dataDir, MEMBERS_FILE), JSON.stringify(rows))
}
