import { PermanentHttpError, TransientHttpError } from '../common/errors';

/**
 * How the HTTP adapters tell a failure that a retry may cure from one it will not, and how they word
 * both without leaking credentials.
 */

export type HeaderSource = Headers | Record<string, string | number | string[] | undefined>;

function header(headers: HeaderSource | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const value = headers[name] ?? headers[name.toLowerCase()];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value[0] : String(value);
}

/** GitHub answers an exhausted rate limit with 403 (or 429) and `x-ratelimit-remaining: 0`. */
export function isRateLimited(status: number, headers?: HeaderSource, body?: unknown): boolean {
  if (status !== 403 && status !== 429) return false;
  return header(headers, 'x-ratelimit-remaining') === '0' || header(headers, 'retry-after') !== undefined || isSecondaryRateLimit(status, body);
}

/**
 * GitHub's secondary rate limits (too many requests at once, or too much CPU) answer 403 or 429 while requests
 * remain, and say so only in the body's message or documentation link.
 */
export function isSecondaryRateLimit(status: number, body: unknown): boolean {
  if (status !== 403 && status !== 429) return false;
  const text = typeof body === 'string' ? body : body && typeof body === 'object' ? JSON.stringify(body) : '';
  return /secondary[ -]rate[ -]limit/i.test(text);
}

/** GitHub asks for at least a minute's pause after a secondary rate limit that names no time. */
const SECONDARY_RATE_LIMIT_PAUSE_MS = 60_000;

export function isRetryableStatus(status: number, headers?: HeaderSource, body?: unknown): boolean {
  return status === 408 || status === 429 || status >= 500 || isRateLimited(status, headers, body);
}

/** From `Retry-After` (seconds or an HTTP date) or, when the limit is spent, `x-ratelimit-reset` (epoch seconds). */
export function retryAfterMs(headers: HeaderSource | undefined, now = Date.now()): number | undefined {
  const retryAfter = header(headers, 'retry-after');
  if (retryAfter !== undefined) {
    if (/^\d+$/.test(retryAfter.trim())) return Number(retryAfter.trim()) * 1000;
    const at = Date.parse(retryAfter);
    if (!Number.isNaN(at)) return Math.max(0, at - now);
  }
  return header(headers, 'x-ratelimit-remaining') === '0' ? resetAfterMs(headers, now) : undefined;
}

/** How long until `x-ratelimit-reset` (epoch seconds), when the answer names it. */
function resetAfterMs(headers: HeaderSource | undefined, now = Date.now()): number | undefined {
  const reset = header(headers, 'x-ratelimit-reset');
  return reset !== undefined && /^\d+$/.test(reset) ? Math.max(0, Number(reset) * 1000 - now) : undefined;
}

/** Replaces every secret in the text. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) result = result.split(secret).join('[REDACTED]');
  }
  return result;
}

/** The URL as it may appear in a message: no user info, no query values that look secret. */
export function displayUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    return String(url);
  }
  if (parsed.username || parsed.password) {
    parsed.username = '';
    parsed.password = '';
  }
  for (const key of [...parsed.searchParams.keys()]) {
    if (/token|secret|key|password|auth|sig/i.test(key)) parsed.searchParams.set(key, 'REDACTED');
  }
  return parsed.toString();
}

/** The server's own explanation: `message` or `error` of a JSON body, else the start of the text. */
export function serverMessage(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'object') {
    const { message, error } = body as { message?: unknown; error?: unknown };
    if (typeof message === 'string' && message.trim()) return message.trim();
    if (typeof error === 'string' && error.trim()) return error.trim();
    return undefined;
  }
  const text = String(body);
  try {
    return serverMessage(JSON.parse(text) as unknown);
  } catch {
    return excerpt(text);
  }
}

/**
 * Text an outside server wrote, as our messages may quote it: they reach histories, GitHub and Slack. One line,
 * at most `max` characters, with no control characters, and nothing a chat or Markdown reader would act on:
 * `<!channel>`, `<@U123>` and links lose their angle brackets, `@here`-style mentions their at sign, and
 * backticks cannot open or close code.
 */
function isControl(char: string): boolean {
  const code = char.codePointAt(0)!;
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
}

export function excerpt(text: string, max = 200): string | undefined {
  const flat = [...text]
    .map((char) => (isControl(char) ? ' ' : char))
    .join('')
    .replace(/\s+/g, ' ')
    .trim();
  if (!flat) return undefined;
  const cut = flat.length > max ? `${flat.slice(0, max)}…` : flat;
  return cut
    .replace(/</g, '‹')
    .replace(/>/g, '›')
    .replace(/`/g, "'")
    .replace(/@(?=(channel|here|everyone)\b)/gi, '＠');
}

export interface HttpFailure {
  service: string;
  method: string;
  url: string | URL;
  status: number;
  headers?: HeaderSource;
  body?: unknown;
  secrets: readonly (string | undefined)[];
}

/** A non-2xx answer as the error the activities expect: PermanentHttpError unless a retry may help. */
export function httpFailure(failure: HttpFailure): PermanentHttpError | TransientHttpError {
  const { service, method, status, headers } = failure;
  const explanation = serverMessage(failure.body);
  const secondary = isSecondaryRateLimit(status, failure.body);
  const wait = secondary ? (retryAfterMs(headers) ?? resetAfterMs(headers) ?? SECONDARY_RATE_LIMIT_PAUSE_MS) : retryAfterMs(headers);
  let message = `${service} ${method} ${displayUrl(failure.url)} returned ${status}${explanation ? `: ${explanation}` : ''}`;
  const limited = secondary ? 'secondary rate limit' : 'rate limited';
  if (isRateLimited(status, headers, failure.body)) message += wait !== undefined ? ` (${limited}; retry in ${Math.ceil(wait / 1000)} s)` : ` (${limited})`;
  message = redact(message, failure.secrets);
  return isRetryableStatus(status, headers, failure.body) ? new TransientHttpError(message, status, wait) : new PermanentHttpError(message, status);
}

export interface NetworkProblem {
  timedOut: boolean;
  /** e.g. "connection refused", "host not found". */
  description: string;
}

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by the server',
  EPIPE: 'connection closed by the server',
  UND_ERR_SOCKET: 'connection closed by the server',
  UND_ERR_CLOSED: 'connection closed by the server',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (temporary)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'timed out waiting for response headers',
  UND_ERR_BODY_TIMEOUT: 'timed out reading the response body',
  CERT_HAS_EXPIRED: 'TLS certificate has expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed TLS certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed TLS certificate in chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate could not be verified',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS certificate does not match the host name',
};

/** Makes sense of what fetch throws: its own TypeError wraps the socket's error in `cause`. */
export function describeNetworkError(err: unknown): NetworkProblem {
  const seen = new Set<unknown>();
  let current: unknown = err;
  let fallback: string | undefined;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const { name, code, message, cause, errors } = current as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
    if (name === 'TimeoutError') return { timedOut: true, description: 'timed out' };
    if (name === 'AbortError') return { timedOut: false, description: 'request aborted' };
    if (typeof code === 'string' && NETWORK_CODES[code]) return { timedOut: false, description: `${NETWORK_CODES[code]} (${code})` };
    if (typeof message === 'string' && message && message !== 'fetch failed' && !fallback) {
      fallback = typeof code === 'string' ? `${message} (${code})` : message;
    }
    current = cause ?? (Array.isArray(errors) ? errors[0] : undefined);
  }
  return { timedOut: false, description: fallback ?? 'network error' };
}

export interface SendRequestOptions {
  service: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string | URL;
  headers?: Record<string, string>;
  /** Sent as JSON (`content-type: application/json` unless the headers name another). */
  body?: unknown;
  timeoutMs: number;
  secrets: readonly (string | undefined)[];
  fetch?: typeof fetch;
}

export interface SentRequest {
  status: number;
  headers: Headers;
  /** Parsed JSON when the answer was JSON, else the text. */
  body: unknown;
}

/** One HTTP exchange with classified failures; a 2xx answer comes back, anything else throws. */
export async function sendRequest(options: SendRequestOptions): Promise<SentRequest> {
  const { service, method, url, timeoutMs, secrets } = options;
  const doFetch = options.fetch ?? fetch;
  const headers: Record<string, string> = { accept: 'application/json', ...(options.headers ?? {}) };
  if (options.body !== undefined && !Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  const what = `${service} ${method} ${displayUrl(url)}`;
  let response: Response;
  let text: string;
  try {
    response = await doFetch(url, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(timeoutMs),
      // A redirect from an API usually means a login page or a wrong base URL; following it would hide that.
      redirect: 'manual',
    });
    text = await response.text();
  } catch (err) {
    const problem = describeNetworkError(err);
    const message = problem.timedOut ? `${what} timed out after ${timeoutMs} ms` : `${what} failed: ${problem.description}`;
    throw new TransientHttpError(redact(message, secrets));
  }
  const body = parseBody(text, response.headers.get('content-type'));
  if (response.status >= 300 && response.status < 400) {
    const location = response.headers.get('location');
    const message = `${what} was redirected (${response.status})${location ? ` to ${displayUrl(location)}` : ''}; check the base URL and credentials`;
    throw new PermanentHttpError(redact(message, secrets), response.status);
  }
  if (response.status < 200 || response.status >= 300) {
    throw httpFailure({ service, method, url, status: response.status, headers: response.headers, body, secrets });
  }
  return { status: response.status, headers: response.headers, body };
}

function parseBody(text: string, contentType: string | null): unknown {
  if (!text) return undefined;
  if (contentType && /json/i.test(contentType)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

/** Joins a base URL that may carry a path prefix (`https://host/argocd`) with a relative path. */
export function joinUrl(base: string, path: string): URL {
  const root = base.endsWith('/') ? base : `${base}/`;
  return new URL(path.replace(/^\/+/, ''), root);
}
