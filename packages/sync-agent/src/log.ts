import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

/**
 * JSON lines on stdout (journald and `docker logs` read them as they are). One child logger
 * per component: `log.child({ c: 'peers' })`. Never log secrets or file contents.
 */
export function createLogger(level: LevelWithSilent): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err }
    },
    pino.destination({ fd: 1, sync: false })
  )
}
