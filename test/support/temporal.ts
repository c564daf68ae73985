/**
 * Helpers for test files to reach the one Temporal dev server that the jest global setup starts
 * (see test/global-setup.ts), and the workflow bundle it prebuilds.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run the tests through jest with the project's config (npm test), ` +
        'whose global setup starts the Temporal dev server',
    );
  }
  return value;
}

/** host:port of the test Temporal dev server. */
export function testAddress(): string {
  return required('TEMPORAL_TEST_ADDRESS');
}

/** Namespace of the test Temporal dev server. */
export function testNamespace(): string {
  return process.env.TEMPORAL_TEST_NAMESPACE || 'default';
}

/** A client on the test server's namespace. Close it with `await client.connection.close()`. */
export async function connectClient(): Promise<Client> {
  const connection = await Connection.connect({ address: testAddress() });
  return new Client({ connection, namespace: testNamespace() });
}

/** A native connection for Workers. Close it with `await connection.close()`. */
export async function connectNative(): Promise<NativeConnection> {
  return NativeConnection.connect({ address: testAddress() });
}

/** Path of the workflow bundle prebuilt once per jest run (for `Worker.create({ workflowBundle: { codePath } })`). */
export function workflowBundlePath(): string {
  return required('WORKFLOW_BUNDLE_PATH');
}

/** A task queue name unique to this call, so tests sharing the server never steal each other's tasks. */
export function uniqueTaskQueue(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}
