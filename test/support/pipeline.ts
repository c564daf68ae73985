import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { ActivityDependencies } from '../../activities';
import { runCli } from '../../client/cli';
import { startPipeline, type StartedPipeline } from '../../client/pipelines';
import type { PipelineStatus } from '../../common/types';
import { startStack, type Stack, type StackOptions } from '../../sandbox/stack';
import { createDeployWorker } from '../../worker/create-worker';
import { statusQuery } from '../../workflows/definitions';
import type { DeployPipeline } from '../../workflows/deploy-pipeline';
import { waitFor } from './env';
import { connectClient, connectNative, testAddress, uniqueTaskQueue, workflowBundlePath } from './temporal';

/** A stack of simulators plus a real worker on its own task queue of the shared test dev server. */
export interface PipelineHarness {
  stack: Stack;
  client: Client;
  taskQueue: string;
  worker: Worker;
  /** Runs the deploy CLI in-process against this harness; returns exit code and output lines. */
  cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }>;
  /** What CI does after a merge: `deploy start --app APP --ref SHA`. */
  startCi(app: string, sha: string): Promise<StartedPipeline>;
  handle(workflowId: string): WorkflowHandle<typeof DeployPipeline>;
  status(workflowId: string): Promise<PipelineStatus>;
  waitForStatus(workflowId: string, wanted: (status: PipelineStatus) => boolean, description: string, timeoutMs?: number): Promise<PipelineStatus>;
  close(): Promise<void>;
}

/** `dependencies`: the worker's, from the stack; default the stack's own (its settings, through the production adapters). */
export async function startHarness(options: Omit<StackOptions, 'dataDir'>, dependencies: (stack: Stack) => ActivityDependencies = (stack) => stack.dependencies): Promise<PipelineHarness> {
  const dataDir = await mkdtemp(join(tmpdir(), 'deploy-harness-'));
  const stack = await startStack({ ...options, dataDir });
  const client = await connectClient();
  let connection: NativeConnection | undefined;
  try {
    connection = await connectNative();
    const taskQueue = uniqueTaskQueue('deploy');
    const worker = await createDeployWorker({ connection, taskQueue, dependencies: dependencies(stack), workflowBundlePath: workflowBundlePath() });
    const running = worker.run();
    // The test server's address keeps a sandbox's settings (.data/sandbox/deploy.env, if one ever ran here) out of the CLI.
    const env = { ...stack.env, DEPLOY_TASK_QUEUE: taskQueue, TEMPORAL_ADDRESS: testAddress() };
    const harness: PipelineHarness = {
      stack,
      client,
      taskQueue,
      worker,
      async cli(args) {
        const out: string[] = [];
        const err: string[] = [];
        const code = await runCli(args, { env, out: (l) => out.push(l), err: (l) => err.push(l), client, pollIntervalMs: 100 });
        return { code, out, err };
      },
      startCi: (app, sha) => startPipeline({ app, ref: sha, requestedBy: 'ci' }, { client, taskQueue, catalogue: stack.catalogue, sourceHost: stack.dependencies.sourceHost }),
      handle: (workflowId) => client.workflow.getHandle<typeof DeployPipeline>(workflowId),
      status: (workflowId) => client.workflow.getHandle(workflowId).query(statusQuery),
      async waitForStatus(workflowId, wanted, description, timeoutMs = 60_000) {
        let last: PipelineStatus | undefined;
        try {
          return await waitFor(
            async () => {
              last = await client.workflow.getHandle(workflowId).query(statusQuery);
              return wanted(last) ? last : undefined;
            },
            { timeoutMs, intervalMs: 100, description },
          );
        } catch (err) {
          throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last)}`);
        }
      },
      async close() {
        worker.shutdown();
        await running.catch(() => undefined);
        await connection!.close();
        await client.connection.close();
        await stack.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
    return harness;
  } catch (err) {
    await connection?.close();
    await client.connection.close();
    await stack.close();
    throw err;
  }
}

/** The failure message of a pipeline that must fail. */
export async function failureOf(h: PipelineHarness, workflowId: string): Promise<string> {
  try {
    await h.handle(workflowId).result();
  } catch (err) {
    expect(err).toBeInstanceOf(WorkflowFailedError);
    return (err as WorkflowFailedError).cause?.message ?? '';
  }
  throw new Error(`${workflowId} was expected to fail`);
}
