import { describe, expect, it } from 'vitest'
import { SupersedeSignal } from '../src/supersede-signal.js'

describe('SupersedeSignal', () => {
  it('calls each listener once on the first abort, not the removed ones, and none added after', () => {
    const signal = new SupersedeSignal()
    const calls: string[] = []
    const a = () => calls.push('a')
    const b = () => calls.push('b')
    signal.addEventListener('abort', a)
    signal.addEventListener('abort', b)
    signal.removeEventListener('abort', a)
    signal.removeEventListener('abort', () => calls.push('never added'))
    expect(signal.aborted).toBe(false)
    signal.abort()
    signal.abort()
    expect(signal.aborted).toBe(true)
    expect(calls).toEqual(['b'])
    signal.addEventListener('abort', () => calls.push('late'))
    signal.abort()
    expect(calls).toEqual(['b'])
  })
})
