import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import type { Env } from '../common/settings';

/**
 * The worker's logs: one JSON object per line on stderr, for log shippers. The SDK attaches workflow and activity
 * ids (workflowId, runId, activityId, activityType, …) to the entries it writes and to `log` calls made from
 * workflow or activity code. Nothing secret is written: known secret values and URL credentials are masked
 * wherever they appear, and fields with secret-sounding names are dropped to a placeholder.
 */

export const LOG_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

export const REDACTED = '[REDACTED]';

/** Environment variables whose values are secrets, by name. */
const SECRET_ENV_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY|KEY_DATA|CREDENTIAL/i;
/** Log fields whose values are never written. The SDK's `taskToken` lets its holder complete an activity. */
const SECRET_FIELD_NAME = /token|secret|password|passwd|authorization|api[-_]?key|credential|cookie/i;
/** Shorter values would mask ordinary words everywhere; real tokens are far longer. */
const MIN_SECRET_LENGTH = 8;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi;
const MAX_DEPTH = 6;

export type Redact = (text: string) => string;

function credentialsInUrl(value: string): string[] {
  if (!value.includes('@')) return [];
  try {
    const url = new URL(value);
    // `https://TOKEN@host` carries the token as the user name; with a password, the name is just a name.
    return [decodeURIComponent(url.password || url.username)];
  } catch {
    return [];
  }
}

/** Every secret the worker's environment holds: values of secret-named variables and credentials inside URLs. */
export function secretValuesFrom(env: Env): string[] {
  const secrets = new Set<string>();
  for (const [name, raw] of Object.entries(env)) {
    const value = raw?.trim();
    if (!value) continue;
    const candidates = SECRET_ENV_NAME.test(name) ? [value, ...credentialsInUrl(value)] : credentialsInUrl(value);
    for (const candidate of candidates) if (candidate.length >= MIN_SECRET_LENGTH) secrets.add(candidate);
  }
  return [...secrets];
}

export function createRedactor(secrets: readonly string[]): Redact {
  // Longest first, so that a secret containing another is masked whole.
  const ordered = [...new Set(secrets)].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  return (text) => {
    let masked = text.replace(URL_CREDENTIALS, `$1${REDACTED}@`);
    for (const secret of ordered) if (masked.includes(secret)) masked = masked.split(secret).join(REDACTED);
    return masked;
  };
}

function sanitize(value: unknown, redact: Redact, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return redact(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  seen.add(value);
  if (value instanceof Error) {
    const fields: Record<string, unknown> = { name: value.name, message: redact(value.message) };
    // Plain facts such as a failure's `type` or an HTTP `status`; objects (an HTTP client's request) stay out.
    for (const [key, field] of Object.entries(value)) {
      if (['string', 'number', 'boolean'].includes(typeof field) && !SECRET_FIELD_NAME.test(key)) fields[key] = sanitize(field, redact, depth + 1, seen);
    }
    if (value.stack) fields.stack = redact(value.stack);
    if (value.cause !== undefined) fields.cause = sanitize(value.cause, redact, depth + 1, seen);
    return fields;
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((item) => sanitize(item, redact, depth + 1, seen));
  return sanitizeFields(value as Record<string, unknown>, redact, depth, seen);
}

function sanitizeFields(fields: Record<string, unknown>, redact: Redact, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const clean: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    clean[key] = SECRET_FIELD_NAME.test(key) ? REDACTED : sanitize(value, redact, depth + 1, seen);
  }
  return clean;
}

/** One log line: `time`, `level` and `message` first, then the entry's fields (which never override those three). */
export function formatLogEntry(entry: LogEntry, redact: Redact): string {
  const record: Record<string, unknown> = {
    time: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
    level: entry.level,
    message: redact(entry.message),
  };
  const fields = entry.meta ? sanitizeFields(entry.meta as LogMetadata, redact, 0, new WeakSet()) : {};
  for (const [key, value] of Object.entries(fields)) if (!(key in record)) record[key] = value;
  return JSON.stringify(record);
}

export interface JsonLoggerOptions {
  level: LogLevel;
  /** Values never to write; see {@link secretValuesFrom}. */
  secrets: readonly string[];
  write?: (line: string) => void;
}

export function createJsonLogger(options: JsonLoggerOptions): Logger {
  const redact = createRedactor(options.secrets);
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  return new DefaultLogger(options.level, (entry) => write(formatLogEntry(entry, redact)));
}
