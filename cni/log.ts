// Plugin logs: pino JSON lines on stderr or in a file named in the config,
// never on stdout (stdout is the CNI result). pino costs ~26 ms to load, so it
// is loaded on the first line actually written: a quiet ADD never pays for it.
import { createRequire } from 'node:module';
import { CNI_CODES, CniError } from './errors.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Level[] = ['debug', 'info', 'warn', 'error'];

export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LogConfig {
  /** absolute path of a file to append to; stderr when absent */
  file?: string;
  level?: Level;
}

/** Validates a `log` section of a plugin config; `field` names it in errors. */
export function parseLogConfig(raw: unknown, field: string): LogConfig {
  if (raw === undefined) return {};
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new CniError(CNI_CODES.INVALID_CONFIG, `${field} must be an object`);
  const r = raw as Record<string, unknown>;
  const out: LogConfig = {};
  for (const key of Object.keys(r)) {
    if (key !== 'file' && key !== 'level') throw new CniError(CNI_CODES.INVALID_CONFIG, `${field}.${key}: unknown field (file, level)`);
  }
  if (r.file !== undefined) {
    if (typeof r.file !== 'string' || !r.file.startsWith('/')) throw new CniError(CNI_CODES.INVALID_CONFIG, `${field}.file must be an absolute path`);
    out.file = r.file;
  }
  if (r.level !== undefined) {
    if (!LEVELS.includes(r.level as Level)) throw new CniError(CNI_CODES.INVALID_CONFIG, `${field}.level must be one of ${LEVELS.join(', ')}`);
    out.level = r.level as Level;
  }
  return out;
}

/** Where log lines go when no log file is configured: an fd, or a sink that takes each line. */
export type LogSink = number | { write(line: string): unknown };

/** A logger that loads pino on its first enabled line. Default level: warn on stderr, info in a file. */
export function lazyLogger(conf: LogConfig, base: Record<string, unknown>, stderr: LogSink = 2): Logger {
  const min = LEVELS.indexOf(conf.level ?? (conf.file ? 'info' : 'warn'));
  let pino: Record<Level, (obj: object, msg: string) => void> | undefined;
  const line = (level: Level) => (obj: object, msg: string) => {
    if (LEVELS.indexOf(level) < min) return;
    if (!pino) {
      const load = createRequire(import.meta.url)('pino') as typeof import('pino');
      const factory = (load as unknown as { default?: typeof load }).default ?? load;
      const dest = conf.file ? factory.destination({ dest: conf.file, sync: true, mkdir: true }) : typeof stderr === 'number' ? factory.destination({ fd: stderr, sync: true }) : stderr;
      pino = factory({ level: LEVELS[min], base }, dest) as unknown as typeof pino;
    }
    pino![level](obj, msg);
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}
