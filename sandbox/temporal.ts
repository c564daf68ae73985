import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
import { projectRoot, startBackground, waitUntilReady, type BackgroundProcess } from './processes';

/** The Temporal dev server of the sandbox: the real `temporal` CLI, its state in a SQLite file, its Web UI on. */

export interface DevServerOptions {
  cliPath: string;
  dbFile: string;
  logFile: string;
  host: string;
  port: number;
  uiPort: number;
  namespace?: string;
}

export interface DevServer {
  address: string;
  namespace: string;
  webUiUrl: string;
  process: BackgroundProcess;
  stop(): Promise<void>;
}

/** Finds (or builds) the CLI with scripts/ensure-temporal-cli.mjs; `onSlow` hears when that takes a while (a Go build). */
export function findTemporalCli(onSlow: () => void = () => undefined): Promise<string> {
  const root = projectRoot();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'scripts', 'ensure-temporal-cli.mjs')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const slow = setTimeout(onSlow, 5000);
    child.once('error', (err) => {
      clearTimeout(slow);
      reject(new Error(`cannot run scripts/ensure-temporal-cli.mjs: ${err.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(slow);
      const path = stdout.trim().split('\n').pop()?.trim();
      if (code === 0 && path) resolve(path);
      else reject(new Error(`no temporal CLI (scripts/ensure-temporal-cli.mjs exited with ${code}):\n${stderr.trim()}`));
    });
  });
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const namespace = options.namespace ?? 'default';
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    options.dbFile,
    '--ip',
    options.host,
    '--port',
    String(options.port),
    '--ui-port',
    String(options.uiPort),
    '--namespace',
    namespace,
    // Warnings at start-up and shutdown are the server talking to itself; the log file keeps errors.
    '--log-level',
    'error',
    ...SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]),
  ];
  const server = startBackground('the Temporal dev server', options.cliPath, args, options.logFile);
  const address = `${options.host}:${options.port}`;
  const webUiUrl = `http://${options.host}:${options.uiPort}`;
  await waitUntilReady(
    server,
    async () => {
      const connection = await Connection.connect({ address, connectTimeout: 2000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
      } finally {
        await connection.close();
      }
      const ui = await fetch(webUiUrl, { signal: AbortSignal.timeout(2000) });
      return ui.ok;
    },
    120_000,
  );
  return { address, namespace, webUiUrl, process: server, stop: () => server.stop() };
}
