/**
 * Jest global setup: runs once per jest run, before any test file.
 *
 *  - starts ONE Temporal dev server (the real `temporal` CLI, see DESIGN.md §6) with our search attributes;
 *  - starts moto's server (ECR simulator) on a free loopback port;
 *  - prebundles the workflow code once.
 *
 * It publishes what tests need through process.env (inherited by the test environments):
 * TEMPORAL_TEST_ADDRESS, TEMPORAL_TEST_NAMESPACE, WORKFLOW_BUNDLE_PATH, AWS_ENDPOINT_URL_ECR, AWS_REGION,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY. test/global-teardown.ts stops the servers.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { bundleDeployWorkflows, WORKFLOWS_PATH } from '../worker/bundle-workflows';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
import { freePort, waitFor } from './support/env';

const ROOT = path.resolve(__dirname, '..');
const TEST_CACHE = path.join(ROOT, '.cache', 'test');
const NAMESPACE = 'default';

export interface TestGlobals {
  env?: TestWorkflowEnvironment;
  moto?: ChildProcess;
}

/** Shared with global-teardown.ts (jest runs both in the same process). */
export const GLOBALS_KEY = '__deployPipelinesTestGlobals';

export function testGlobals(): TestGlobals {
  const g = globalThis as unknown as Record<string, TestGlobals | undefined>;
  return (g[GLOBALS_KEY] ??= {});
}

function log(msg: string): void {
  process.stderr.write(`[global-setup] ${msg}\n`);
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Runs a helper script that prints a path on stdout and logs to stderr (passed through). */
function runPathScript(command: string, args: string[], what: string): string {
  try {
    const out = execFileSync(command, args, {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1024 * 1024,
    });
    const lines = out.trim().split('\n');
    const p = lines[lines.length - 1]?.trim();
    if (!p) throw new Error(`${command} ${args.join(' ')} printed no path`);
    return p;
  } catch (err) {
    throw new Error(`${what}: \`${command} ${args.join(' ')}\` failed (its output is above): ${errorText(err)}`);
  }
}

async function startTemporal(): Promise<void> {
  const cliPath = runPathScript(process.execPath, ['scripts/ensure-temporal-cli.mjs'], 'temporal CLI could not be found or built');
  log(`starting the Temporal dev server (${path.relative(ROOT, cliPath) || cliPath})`);
  const started = Date.now();
  let env: TestWorkflowEnvironment;
  try {
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: cliPath },
        namespace: NAMESPACE,
        ip: '127.0.0.1',
        searchAttributes: SEARCH_ATTRIBUTES,
        log: { format: 'pretty', level: 'warn' },
      },
    });
  } catch (err) {
    throw new Error(`Temporal dev server could not be started with ${cliPath}: ${errorText(err)}`);
  }
  testGlobals().env = env;
  process.env.TEMPORAL_TEST_ADDRESS = env.address;
  process.env.TEMPORAL_TEST_NAMESPACE = env.namespace ?? NAMESPACE;
  log(`Temporal dev server at ${env.address}, namespace ${process.env.TEMPORAL_TEST_NAMESPACE} (${Date.now() - started} ms)`);
}

async function startMoto(): Promise<void> {
  const motoServer = runPathScript('bash', ['scripts/ensure-moto.sh'], 'moto server could not be installed');
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  log(`starting moto on ${endpoint}`);
  const output: string[] = [];
  const child = spawn(motoServer, ['-H', '127.0.0.1', '-p', String(port)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  testGlobals().moto = child;
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 100) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: string | undefined;
  let spawnError: Error | undefined;
  child.on('error', (err) => (spawnError = err));
  child.on('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
  // Never leave moto running if jest dies without running the teardown.
  process.once('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  try {
    await waitFor(
      async () => {
        if (spawnError) throw new Error(`moto_server could not be started: ${spawnError.message}`);
        if (exited) throw new Error(`moto_server ${exited}`);
        const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2_000) });
        return res.status < 500;
      },
      { timeoutMs: 30_000, intervalMs: 200, description: `moto server on ${endpoint} to answer HTTP` },
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`moto server did not come up: ${errorText(err)}\n--- moto output ---\n${output.join('').trim()}`);
  }
  // Stop buffering output once it is up, but keep draining the pipes so moto never blocks on a full pipe.
  child.stdout?.off('data', keep);
  child.stderr?.off('data', keep);
  child.stdout?.resume();
  child.stderr?.resume();

  process.env.AWS_ENDPOINT_URL_ECR = endpoint;
  process.env.AWS_REGION = 'eu-west-2';
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  log(`moto ready at ${endpoint} (pid ${child.pid})`);
}

async function bundleWorkflows(): Promise<void> {
  const started = Date.now();
  let code: string;
  try {
    // The same bundle as `npm run build` makes, interceptor modules included.
    code = await bundleDeployWorkflows({ logger: new DefaultLogger('WARN') });
  } catch (err) {
    throw new Error(`workflow code could not be bundled from ${path.relative(ROOT, WORKFLOWS_PATH)}: ${errorText(err)}`);
  }
  mkdirSync(TEST_CACHE, { recursive: true });
  const bundlePath = path.join(TEST_CACHE, 'workflow-bundle.js');
  writeFileSync(bundlePath, code);
  process.env.WORKFLOW_BUNDLE_PATH = bundlePath;
  log(`workflow bundle written to ${path.relative(ROOT, bundlePath)} (${Date.now() - started} ms)`);
}

export default async function globalSetup(): Promise<void> {
  process.stderr.write('\n');
  try {
    await startTemporal();
    await startMoto();
    await bundleWorkflows();
  } catch (err) {
    // Jest skips the teardown when the setup fails: stop what was started here.
    const { env, moto } = testGlobals();
    moto?.kill('SIGKILL');
    await env?.teardown().catch(() => undefined);
    throw err;
  }
}
