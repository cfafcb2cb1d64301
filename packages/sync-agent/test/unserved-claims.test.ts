import { describe, expect, it } from 'vitest'
import { UnservedClaims } from '../src/peers/unserved-claims.js'

describe('unserved claims', () => {
  const setup = () => {
    let now = 1_000
    const claims = new UnservedClaims<string>(60_000, () => now)
    return { claims, at: (ms: number) => (now = 1_000 + ms) }
  }

  it('a peer we stay behind while idle is not serving after the deadline, once', () => {
    const { claims, at } = setup()
    expect(claims.observe('p', true)).toBeNull()
    at(59_999)
    expect(claims.observe('p', true)).toBeNull()
    expect(claims.isNotServing('p')).toBe(false)
    at(60_000)
    expect(claims.observe('p', true)).toBe('not-serving')
    expect(claims.notServingSince('p')).toBe(1_000)
    at(90_000)
    expect(claims.observe('p', true)).toBeNull() // reported once
    expect(claims.isNotServing('p')).toBe(true)
  })

  it('catching up at any time resets the clock; after the deadline it is serving again', () => {
    const { claims, at } = setup()
    claims.observe('p', true)
    at(30_000)
    expect(claims.observe('p', false)).toBeNull()
    at(80_000)
    expect(claims.observe('p', true)).toBeNull() // a new clock starts here
    at(139_999)
    expect(claims.observe('p', true)).toBeNull()
    at(140_000)
    expect(claims.observe('p', true)).toBe('not-serving')
    at(150_000)
    expect(claims.observe('p', false)).toBe('serving-again')
    expect(claims.isNotServing('p')).toBe(false)
    expect(claims.notServingSince('p')).toBeNull()
  })

  it('while work is in progress nothing is judged and the clock is kept', () => {
    const { claims, at } = setup()
    claims.observe('p', true)
    at(70_000)
    expect(claims.observe('p', null)).toBeNull()
    expect(claims.isNotServing('p')).toBe(false)
    expect(claims.observe('p', true)).toBe('not-serving')
    expect(claims.observe('p', null)).toBeNull()
    expect(claims.isNotServing('p')).toBe(true)
  })

  it('peers are judged apart, and a peer that goes away is forgotten', () => {
    const { claims, at } = setup()
    claims.observe('liar', true)
    claims.observe('good', false)
    at(60_000)
    expect(claims.observe('liar', true)).toBe('not-serving')
    expect(claims.observe('good', false)).toBeNull()
    expect(claims.isNotServing('good')).toBe(false)
    claims.forget('liar')
    expect(claims.isNotServing('liar')).toBe(false)
    expect(claims.observe('liar', true)).toBeNull() // a new connection starts a new clock
  })
})
