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
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { freePort } from '../harness/free-ports';
import { installMoto, startMoto, useLocalEcr, type Moto } from '../harness/moto';
import { findTemporalCli } from '../harness/temporal-cli';
import { bundleDeployWorkflows, WORKFLOWS_PATH } from '../worker/bundle-workflows';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';

const ROOT = path.resolve(__dirname, '..');
const TEST_CACHE = path.join(ROOT, '.cache', 'test');
const NAMESPACE = 'default';

export interface TestGlobals {
  env?: TestWorkflowEnvironment;
  moto?: Moto;
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

async function startTemporal(): Promise<void> {
  const cliPath = await findTemporalCli({ log: 'show' });
  log(`starting the Temporal dev server (${path.relative(ROOT, cliPath) || cliPath})`);
  const started = Date.now();
  let env: TestWorkflowEnvironment;
  try {
    // The SDK's own runner of the CLI's dev server (DESIGN.md §6); the sandbox, the bench and the crash tests,
    // which need a log file, a SQLite file or restarts, use harness/dev-server.ts.
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

async function startEcr(): Promise<void> {
  const server = await installMoto({ log: 'show' });
  mkdirSync(TEST_CACHE, { recursive: true });
  const moto = await startMoto({ server, port: await freePort(), logFile: path.join(TEST_CACHE, 'moto.log'), child: { cwd: ROOT, freshLog: true }, readyTimeoutMs: 30_000 });
  testGlobals().moto = moto;
  useLocalEcr(moto.endpoint);
  log(`moto ready at ${moto.endpoint} (pid ${moto.child.pid}, log ${path.relative(ROOT, moto.child.logFile!)})`);
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
    await startEcr();
    await bundleWorkflows();
  } catch (err) {
    // Jest skips the teardown when the setup fails: stop what was started here.
    const { env, moto } = testGlobals();
    await moto?.child.kill();
    await env?.teardown().catch(() => undefined);
    throw err;
  }
}
