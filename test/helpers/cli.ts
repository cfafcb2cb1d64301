import { spawn } from 'node:child_process'
import { binPath } from './paths.ts'
import { newSecret as makeSecret } from '../../packages/shared/dist/index.js'

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunCliOptions {
  /** Extra environment; SYNC_AGENT_* from the test runner's own environment is never inherited. */
  env?: Record<string, string | undefined>
  timeoutMs?: number
  cwd?: string
}

/** The test runner's environment without any SYNC_AGENT_* variables (or NODE_OPTIONS). */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('SYNC_AGENT_') || key === 'NODE_OPTIONS') continue
    env[key] = value
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key]
    else env[key] = value
  }
  return env
}

/** Runs `node bin/sync-agent.js …args` to completion and collects its output. */
export function runCli(args: string[], { env = {}, timeoutMs = 20_000, cwd }: RunCliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], {
      env: cleanEnv(env),
      cwd,
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`sync-agent ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, timeoutMs)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/**
 * A fresh folder secret, made by the function `sync-agent secret new` prints (in this
 * process: a CLI process per test cost ~0.4 s of CPU each; cli.test.ts runs the command).
 */
export async function newSecret(): Promise<string> {
  const secret = makeSecret()
  if (!secret.startsWith('sa1')) throw new Error(`newSecret: unexpected secret ${JSON.stringify(secret)}`)
  return secret
}
