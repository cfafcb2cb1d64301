import { describe, expect, it } from 'vitest'
import { isLanAddress } from '../src/peers/lan-address.js'

describe('isLanAddress', () => {
  it.each(['10.1.2.3', '172.16.0.1', '172.31.255.254', '192.168.1.10', '127.0.0.1', '169.254.3.4', '::1', 'fd12:3456::1', 'fe80::1', 'fe80::1%eth0', '::ffff:192.168.0.7', '::FFFF:10.0.0.1'])('%s is on the LAN', (ip) => {
    expect(isLanAddress(ip)).toBe(true)
  })

  it.each(['8.8.8.8', '172.15.0.1', '172.32.0.1', '192.169.0.1', '100.64.0.1', '2001:db8::1', '::ffff:8.8.8.8', 'example.com', '', undefined])('%s is not', (ip) => {
    expect(isLanAddress(ip)).toBe(false)
  })
})
