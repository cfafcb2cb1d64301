import { sign, verify, type FolderKeys } from '@sync-agent/shared'

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
