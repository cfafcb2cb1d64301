import { BlockList, isIP } from 'node:net'

/**
 * Is `address` (a socket's remote address) on the local network: private IPv4 (RFC 1918),
 * loopback, link-local, IPv6 unique-local or link-local, or such an IPv4 address mapped into
 * IPv6? What Syncthing and Resilio call LAN peers when they leave them out of bandwidth
 * limits (the `limitLan` setting).
 */
const LAN = new BlockList()
for (const [net, prefix] of [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['127.0.0.0', 8], ['169.254.0.0', 16]] as const) LAN.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) LAN.addSubnet(net, prefix, 'ipv6')

export function isLanAddress(address: string | undefined): boolean {
  if (!address) return false
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  const ip = mapped ? (mapped[1] as string) : address.replace(/%.*$/, '')
  const family = isIP(ip)
  if (family === 0) return false
  return LAN.check(ip, family === 4 ? 'ipv4' : 'ipv6')
}
