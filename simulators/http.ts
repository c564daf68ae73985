import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small HTTP server for the simulators: routes by method and path regex, JSON in and out,
 * a request log for assertions and fault injection shared by every simulator.
 */

export interface SimRequest {
  method: string;
  /** Path as received, still percent-encoded; route patterns match against it. */
  path: string;
  url: URL;
  query: URLSearchParams;
  /** The route pattern's capture groups, percent-decoded. */
  params: string[];
  headers: IncomingHttpHeaders;
  /** Parsed JSON body; the raw text for non-JSON content types; undefined when empty. */
  body: unknown;
  rawBody: string;
}

export interface SimResponse {
  status: number;
  headers?: Record<string, string>;
  /** A string is sent as is (text/plain unless headers say otherwise), anything else as JSON; undefined sends no body. */
  body?: unknown;
}

export type RouteHandler = (request: SimRequest) => SimResponse | Promise<SimResponse>;

export interface FaultSpec {
  method?: string;
  /** Tested against the path (with its query string); a string is read as a regular expression. */
  pathPattern?: RegExp | string;
  /** Status to answer with; without it (and without dropConnection) the fault only delays the real answer. */
  status?: number;
  /** How many matching requests the fault applies to; default 1, Infinity for all. */
  times?: number;
  headers?: Record<string, string>;
  body?: unknown;
  delayMs?: number;
  /** Destroy the socket (after delayMs) instead of answering. */
  dropConnection?: boolean;
  /** Let the real handler act, then hold its answer this long: the side effect is done, the caller does not know yet. */
  holdAnswerMs?: number;
}

export interface InjectedFault {
  readonly spec: FaultSpec;
  /** Matching requests still to be hit. */
  readonly remaining: number;
  /** Requests the fault has hit so far. */
  readonly hits: number;
  cancel(): void;
}

export interface LoggedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Path with the query string. */
  url: string;
  time: Date;
  /** Request headers minus credentials. */
  headers: Record<string, string>;
  body: unknown;
  /** Status sent, undefined when the connection was dropped or the server closed first. */
  status?: number;
  fault: boolean;
}

export interface SimServerOptions {
  host?: string;
  port?: number;
  notFound?: (request: SimRequest) => SimResponse;
  invalidJson?: (request: SimRequest) => SimResponse;
}

export interface RunningSimulator {
  url: string;
  port: number;
  close(): Promise<void>;
}

const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key']);

interface Route {
  method: string;
  pattern: RegExp;
  handler: RouteHandler;
}

class Fault implements InjectedFault {
  remaining: number;
  hits = 0;
  private readonly pathPattern?: RegExp;

  constructor(
    readonly spec: FaultSpec,
    private readonly owner: Set<Fault>,
  ) {
    this.remaining = spec.times ?? 1;
    if (spec.pathPattern !== undefined) {
      this.pathPattern = typeof spec.pathPattern === 'string' ? new RegExp(spec.pathPattern) : spec.pathPattern;
    }
  }

  matches(method: string, pathWithQuery: string): boolean {
    if (this.remaining <= 0) return false;
    if (this.spec.method && this.spec.method.toUpperCase() !== method) return false;
    if (this.pathPattern) {
      this.pathPattern.lastIndex = 0;
      if (!this.pathPattern.test(pathWithQuery)) return false;
    }
    return true;
  }

  take(): void {
    this.remaining -= 1;
    this.hits += 1;
    if (this.remaining <= 0) this.owner.delete(this);
  }

  cancel(): void {
    this.remaining = 0;
    this.owner.delete(this);
  }
}

export class SimServer {
  readonly requests: LoggedRequest[] = [];
  private readonly routes: Route[] = [];
  private readonly faults = new Set<Fault>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private server?: Server;
  private address?: AddressInfo;

  constructor(private readonly options: SimServerOptions = {}) {}

  route(method: string, pattern: RegExp, handler: RouteHandler): this {
    this.routes.push({ method: method.toUpperCase(), pattern, handler });
    return this;
  }

  injectFault(spec: FaultSpec): InjectedFault {
    const fault = new Fault(spec, this.faults);
    if (fault.remaining > 0) this.faults.add(fault);
    return fault;
  }

  clearFaults(): void {
    for (const fault of [...this.faults]) fault.cancel();
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  get port(): number {
    if (!this.address) throw new Error('simulator is not started');
    return this.address.port;
  }

  get url(): string {
    if (!this.address) throw new Error('simulator is not started');
    const host = this.address.family === 'IPv6' ? `[${this.address.address}]` : this.address.address;
    return `http://${host}:${this.address.port}`;
  }

  get started(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<RunningSimulator> {
    if (this.server) throw new Error('simulator is already started');
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) send(res, { status: 500, body: { message: errorText(err) } });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.address = server.address() as AddressInfo;
    return { url: this.url, port: this.port, close: () => this.close() };
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://simulator.invalid');
    const rawBody = await readBody(req);
    const entry: LoggedRequest = {
      method,
      path: url.pathname,
      url: url.pathname + url.search,
      time: new Date(),
      headers: loggableHeaders(req.headers),
      body: undefined,
      fault: false,
    };
    this.requests.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
    });

    const fault = [...this.faults].find((candidate) => candidate.matches(method, entry.url));
    const holdAnswerMs = fault?.spec.holdAnswerMs;
    if (fault && holdAnswerMs !== undefined) {
      fault.take();
      entry.fault = true;
    } else if (fault) {
      fault.take();
      entry.fault = true;
      const { spec } = fault;
      if (spec.delayMs) await this.sleep(spec.delayMs);
      if (!this.server || res.destroyed) return;
      if (spec.dropConnection) {
        req.socket.destroy();
        return;
      }
      if (spec.status !== undefined) {
        const body = spec.body !== undefined ? spec.body : { message: STATUS_CODES[spec.status] ?? 'Injected fault' };
        send(res, { status: spec.status, headers: spec.headers, body });
        return;
      }
    }

    const request: SimRequest = {
      method,
      path: url.pathname,
      url,
      query: url.searchParams,
      params: [],
      headers: req.headers,
      body: undefined,
      rawBody,
    };
    try {
      request.body = parseBody(rawBody, req.headers['content-type']);
    } catch {
      send(res, this.options.invalidJson?.(request) ?? { status: 400, body: { message: 'Problems parsing JSON' } });
      return;
    }
    entry.body = request.body;

    for (const route of this.routes) {
      if (route.method !== method) continue;
      route.pattern.lastIndex = 0;
      const match = route.pattern.exec(url.pathname);
      if (!match) continue;
      request.params = match.slice(1).map((part) => (part === undefined ? '' : safeDecode(part)));
      let response: SimResponse;
      try {
        response = await route.handler(request);
      } catch (err) {
        response = { status: 500, body: { message: errorText(err) } };
      }
      if (holdAnswerMs) {
        await this.sleep(holdAnswerMs);
        if (!this.server) return;
      }
      if (!res.destroyed) send(res, response);
      return;
    }
    send(res, this.options.notFound?.(request) ?? { status: 404, body: { message: 'Not Found' } });
  }
}

/** Base for the simulators: owns a SimServer and exposes its lifecycle, log and fault injection. */
export abstract class Simulator {
  protected readonly server: SimServer;

  protected constructor(options: SimServerOptions) {
    this.server = new SimServer(options);
  }

  /** Hook for state that needs the server's URL or outside resources before the first request. */
  protected async beforeStart(): Promise<void> {}

  /** Hook to stop timers and background work. */
  protected async afterClose(): Promise<void> {}

  async start(): Promise<RunningSimulator> {
    await this.beforeStart();
    await this.server.start();
    return { url: this.url, port: this.port, close: () => this.close() };
  }

  async close(): Promise<void> {
    await this.server.close();
    await this.afterClose();
  }

  get url(): string {
    return this.server.url;
  }

  get port(): number {
    return this.server.port;
  }

  get requests(): readonly LoggedRequest[] {
    return this.server.requests;
  }

  clearRequests(): void {
    this.server.clearRequests();
  }

  injectFault(spec: FaultSpec): InjectedFault {
    return this.server.injectFault(spec);
  }

  clearFaults(): void {
    this.server.clearFaults();
  }
}

export function json(status: number, body: unknown, headers?: Record<string, string>): SimResponse {
  return { status, body, headers };
}

/** The token of an `Authorization: Bearer <token>` (or GitHub's `token <token>`) header. */
export function bearerToken(headers: IncomingHttpHeaders, schemes: readonly string[] = ['bearer']): string | undefined {
  const header = headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (!match || !schemes.includes(match[1].toLowerCase())) return undefined;
  return match[2];
}

/** Compares a secret in constant time, as a real server does. */
export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function hasToken(headers: IncomingHttpHeaders, expected: string, schemes?: readonly string[]): boolean {
  const given = bearerToken(headers, schemes);
  return given !== undefined && sameSecret(given, expected);
}

export function randomHex(length: number): string {
  return randomBytes(Math.ceil(length / 2)).toString('hex').slice(0, length);
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function send(res: ServerResponse, response: SimResponse): void {
  const headers: Record<string, string> = { ...(response.headers ?? {}) };
  const hasContentType = Object.keys(headers).some((name) => name.toLowerCase() === 'content-type');
  let payload: string | undefined;
  if (typeof response.body === 'string') {
    payload = response.body;
    if (!hasContentType) headers['content-type'] = 'text/plain; charset=utf-8';
  } else if (response.body !== undefined) {
    payload = JSON.stringify(response.body);
    if (!hasContentType) headers['content-type'] = 'application/json; charset=utf-8';
  }
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  res.writeHead(response.status, headers);
  res.end(payload);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(rawBody: string, contentType: string | undefined): unknown {
  if (rawBody.length === 0) return undefined;
  if (contentType && !/json/i.test(contentType)) return rawBody;
  return JSON.parse(rawBody) as unknown;
}

function loggableHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || SECRET_HEADERS.has(name)) continue;
    result[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return result;
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
