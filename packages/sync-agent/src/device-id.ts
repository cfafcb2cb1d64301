import { base32Encode } from '@sync-agent/shared'

/** A device id is the base32 of its Noise public key, upper case like Syncthing's. */
export function deviceIdOf(publicKey: Uint8Array): string {
  return base32Encode(publicKey).toUpperCase()
}

/** The key a device uses in version vectors. */
export function vectorKeyOf(publicKey: Uint8Array): string {
  return deviceIdOf(publicKey).slice(0, 16)
}

/** Seven characters, as in Syncthing's conflict names and status output. */
export function shortIdOf(publicKey: Uint8Array): string {
  return deviceIdOf(publicKey).slice(0, 7)
}
