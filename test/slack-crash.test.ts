/**
 * Slack exactly once, with a real crash: a worker process is killed with `kill -9` right after the notifyPeople
 * step's post reached Slack and before the step's result reached Temporal (test/support/crash-worker.ts). The
 * step runs again on a new worker. With the bot token (the Web API) the retry finds the message and the channel
 * holds it once; with an incoming webhook it is posted twice, which is why docs call that mode at least once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { startPipeline } from '../client/pipelines';
import { startStack, type Stack } from '../sandbox/stack';
import { statusQuery } from '../workflows/definitions';
import { CRASH_WORKER, spawnWorker, stackWorkerEnv, WORKER_MAIN, type WorkerProcess } from './support/crash-harness';
import { waitFor } from './support/env';
import { connectClient, testAddress, testNamespace, uniqueTaskQueue } from './support/temporal';
import { stepsInHistory } from './support/history-steps';

const APP = 'slack-once';

describe('Slack after kill -9 between the post and the step completing', () => {
  let stack: Stack;
  let dataDir: string;
  let client: Client;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'deploy-slack-crash-'));
    stack = await startStack({
      dataDir,
      apps: { [APP]: { environments: { integration: {}, staging: { continuousDeployment: false } } } },
      // A step whose worker died runs again after 3 s instead of 2 minutes.
      stepRetry: { maximumAttempts: 5, maximumInterval: '1s', attemptTimeout: '3s', heartbeatTimeout: '3s' },
    });
    client = await connectClient();
  }, 60_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await client?.connection.close();
    await stack?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  async function worker(entry: string, taskQueue: string, extra: Record<string, string>): Promise<WorkerProcess> {
    const where = { address: testAddress(), namespace: testNamespace(), taskQueue, chartsWorkdir: path.join(dataDir, `charts-workdir-${taskQueue}`) };
    // A killed worker's sticky queue hands its workflows' next tasks to another worker after 1 s, not 10.
    const started = await spawnWorker(entry, stackWorkerEnv(stack, where, { DEPLOY_TEST_STICKY_TIMEOUT: '1s', ...extra }));
    workers.push(started);
    return started;
  }

  /** Whether the pipeline's notifyPeople step has completed (on whichever attempt). */
  async function notifyCompleted(workflowId: string): Promise<boolean> {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    return stepsInHistory(events).some((s) => s.activityType === 'notifyPeople' && s.completed);
  }

  /** Starts a pipeline that waits for approval in staging, kills its worker right after the approval message was posted, and lets another worker finish the step. */
  async function crashAfterNotice(slackEnv: Record<string, string>): Promise<{ workflowId: string; crashedAttempt: number }> {
    const taskQueue = uniqueTaskQueue('slack-crash');
    const doomed = await worker(CRASH_WORKER, taskQueue, { ...slackEnv, DEPLOY_TEST_CRASH_AFTER: 'notifyPeople', DEPLOY_TEST_CRASH_MODE: 'kill' });
    const sha = await stack.merge(APP);
    const { workflowId } = await startPipeline({ app: APP, ref: sha, requestedBy: 'ci' }, { client, taskQueue, catalogue: stack.catalogue });
    const point = await waitFor(
      () => {
        const [reached] = doomed.crashPoints();
        if (!reached && !doomed.running) throw new Error(`the worker exited before its crash point: ${doomed.lines.slice(-5).join(' / ')}`);
        return reached;
      },
      { timeoutMs: 60_000, intervalMs: 20, description: `notifyPeople to post for ${workflowId}` },
    );
    await doomed.exited;
    expect(await notifyCompleted(workflowId)).toBe(false);

    await worker(WORKER_MAIN, taskQueue, slackEnv);
    await waitFor(() => notifyCompleted(workflowId), { timeoutMs: 60_000, intervalMs: 200, description: `the retried notifyPeople of ${workflowId} to complete` });
    expect((await client.workflow.getHandle(workflowId).query(statusQuery)).status).toBe('AWAITING_APPROVAL');
    await client.workflow.getHandle(workflowId).terminate('test finished');
    return { workflowId, crashedAttempt: point.attempt };
  }

  it('with the bot token, the channel holds the approval message once', async () => {
    stack.slack.clearRequests();
    const { workflowId, crashedAttempt } = await crashAfterNotice({});
    expect(crashedAttempt).toBe(1);
    const mine = stack.slack.messages.filter((m) => m.text.includes(workflowId));
    expect(mine).toHaveLength(1);
    expect(mine[0]).toEqual(
      expect.objectContaining({
        channel: stack.env.SLACK_CHANNEL,
        text: expect.stringContaining('waits for approval to deploy to staging'),
        metadata: { event_type: 'deploy_pipeline_notice', event_payload: { key: expect.stringMatching(new RegExp(`^${workflowId}/[0-9a-f-]{36}/\\d+$`)) } },
      }),
    );
    // The first attempt posted without looking; the retry looked, found it, and posted nothing.
    const calls = stack.slack.requests.map((r) => r.path);
    expect(calls).toEqual(['/api/chat.postMessage', '/api/conversations.history']);
  }, 120_000);

  it('with an incoming webhook, the same crash posts the message twice (at least once)', async () => {
    const webhook = { SLACK_BOT_TOKEN: '', SLACK_CHANNEL: '', SLACK_API_URL: '', SLACK_WEBHOOK_URL: stack.slack.webhookUrl };
    const { workflowId } = await crashAfterNotice(webhook);
    const mine = stack.slack.messages.filter((m) => m.text.includes(workflowId));
    expect(mine.map((m) => m.path)).toEqual(['/services/T0SANDBOX/B0DEPLOYS/sandboxwebhooksecret', '/services/T0SANDBOX/B0DEPLOYS/sandboxwebhooksecret']);
    expect(mine[0]!.text).toBe(mine[1]!.text);
  }, 120_000);
});
