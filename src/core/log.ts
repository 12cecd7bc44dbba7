/**
 * Structured JSON logs on stderr (pino), one line per event. Credentials are
 * redacted by key so that a config or error object can be logged safely.
 */
import { type Logger, pino } from "pino";

export type { Logger };

export function createLogger(level: string, role: string): Logger {
  return pino(
    {
      level,
      base: { role, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ["password", "*.password", "*.*.password", "pulseUrl", "*.pulseUrl", "authorization", "*.authorization", "headers.authorization"],
        censor: "***",
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
