/**
 * A Temporal dev server (`temporal server start-dev`, the real CLI, never a fake) with our search attributes
 * registered: the sandbox's (SQLite file, Web UI), the bench's (headless) and the crash tests' (killed and
 * restarted on its SQLite file).
 */
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
import { startChild, waitUntilReady, type Child, type ChildOptions } from './child-processes';

export interface DevServerOptions {
  cliPath: string;
  host?: string;
  port: number;
  /** The Web UI's port; without one the server runs headless. */
  uiPort?: number;
  /** Ports of the server's HTTP API and metrics; the CLI picks free ones when they are not given. */
  httpPort?: number;
  metricsPort?: number;
  /** State in this SQLite file, which survives restarts; in memory without one. */
  dbFile?: string;
  logFile: string;
  namespace?: string;
  /** `error` by default: warnings at start-up and shutdown are the server talking to itself. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Dynamic configuration; values are JSON, e.g. `{ 'history.defaultWorkflowTaskTimeout': '"3s"' }`. */
  dynamicConfig?: Record<string, string>;
  extraArgs?: string[];
  name?: string;
  child?: Omit<ChildOptions, 'logFile'>;
  /** 120 s by default: the first start on a cold machine migrates the SQLite schema. */
  readyTimeoutMs?: number;
}

export interface DevServer {
  /** host:port of its frontend. */
  address: string;
  namespace: string;
  webUiUrl: string | undefined;
  child: Child;
  /** A gentle stop (the child's stop signal), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** `kill -9`. */
  kill(): Promise<void>;
}

export function devServerArgs(options: DevServerOptions): string[] {
  const optional = (flag: string, value: string | number | undefined) => (value === undefined ? [] : [flag, String(value)]);
  return [
    'server',
    'start-dev',
    ...optional('--db-filename', options.dbFile),
    '--ip',
    options.host ?? '127.0.0.1',
    '--port',
    String(options.port),
    ...(options.uiPort === undefined ? ['--headless'] : ['--ui-port', String(options.uiPort)]),
    ...optional('--http-port', options.httpPort),
    ...optional('--metrics-port', options.metricsPort),
    '--namespace',
    options.namespace ?? 'default',
    '--log-level',
    options.logLevel ?? 'error',
    ...SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]),
    ...Object.entries(options.dynamicConfig ?? {}).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${value}`]),
    ...(options.extraArgs ?? []),
  ];
}

/** Starts the dev server; resolves once its frontend answers with our search attributes registered, and its Web UI answers. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  const namespace = options.namespace ?? 'default';
  const address = `${host}:${options.port}`;
  const webUiUrl = options.uiPort === undefined ? undefined : `http://${host}:${options.uiPort}`;
  const child = startChild(options.name ?? 'the Temporal dev server', options.cliPath, devServerArgs(options), { ...options.child, logFile: options.logFile });
  await waitUntilReady(
    child,
    async () => {
      const connection = await Connection.connect({ address, connectTimeout: 2000 });
      try {
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
        const missing = SEARCH_ATTRIBUTES.map((key) => key.name).filter((name) => !customAttributes?.[name]);
        if (missing.length > 0) throw new Error(`search attributes ${missing.join(', ')} not registered yet`);
      } finally {
        await connection.close();
      }
      if (webUiUrl === undefined) return true;
      const ui = await fetch(webUiUrl, { signal: AbortSignal.timeout(2000) });
      return ui.ok;
    },
    options.readyTimeoutMs ?? 120_000,
  );
  return { address, namespace, webUiUrl, child, stop: (graceMs) => child.stop(graceMs), kill: () => child.kill() };
}
