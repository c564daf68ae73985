/**
 * The lane stage (activities/lanes.ts) alone, in MockActivityEnvironment: signalLane against the test's Temporal
 * server (no worker polls the lane's queue, so the lane only records what it was sent), and the deploy window.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type PipelineActivities } from '../activities';
import { startStack, type Stack } from '../sandbox/stack';
import { acquireLaneSignal, awaitingApprovalSignal, laneWorkflowId } from '../workflows/definitions';
import { errorFrom } from './support/env';
import { connectClient, uniqueTaskQueue } from './support/temporal';

const APP = 'router';

describe('the lane stage', () => {
  let dataDir: string;
  let stack: Stack;
  let client: Client;
  let activities: PipelineActivities;
  const taskQueue = uniqueTaskQueue('lanes');

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'activities-lanes-'));
    stack = await startStack({
      dataDir,
      apps: {
        [APP]: {
          environments: {
            integration: {},
            production: { deployWindows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:30', to: '17:00', timezone: 'Europe/London' }] },
          },
        },
      },
    });
    client = await connectClient();
    activities = createActivities(stack.dependencies);
  });
  afterAll(async () => {
    await client?.workflow.getHandle(laneWorkflowId(taskQueue, APP, 'integration')).terminate('test over').catch(() => undefined);
    await client?.connection.close();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('signalLane starts the lane when there is none, and signals the running one after', async () => {
    const env = () => new MockActivityEnvironment({ taskQueue }, { client });
    const request = { pipelineId: `deploy-${APP}-${'1'.repeat(40)}`, runId: 'run-1', sha: '1'.repeat(40), trigger: 'ci' as const };
    await env().run(activities.signalLane, { app: APP, environment: 'integration', signal: 'acquire' as const, request });
    const lane = client.workflow.getHandle(laneWorkflowId(taskQueue, APP, 'integration'));
    const first = await lane.describe();
    expect(first).toMatchObject({ type: 'DeployLane', taskQueue, status: { name: 'RUNNING' } });
    await env().run(activities.signalLane, { app: APP, environment: 'integration', signal: 'awaitingApproval' as const, request });
    expect((await lane.describe()).runId).toBe(first.runId);

    const history = await lane.fetchHistory();
    const started = history.events!.find((e) => e.workflowExecutionStartedEventAttributes)!.workflowExecutionStartedEventAttributes!;
    expect(JSON.parse(Buffer.from(started.input!.payloads![0]!.data!).toString())).toEqual({ app: APP, environment: 'integration' });
    const signals = history.events!.filter((e) => e.workflowExecutionSignaledEventAttributes).map((e) => e.workflowExecutionSignaledEventAttributes!);
    expect(signals.map((s) => s.signalName)).toEqual([acquireLaneSignal.name, awaitingApprovalSignal.name]);
    expect(JSON.parse(Buffer.from(signals[0]!.input!.payloads![0]!.data!).toString())).toEqual(request);
  });

  it('signalLane refuses for good an environment the app does not have, before it signals anything', async () => {
    const request = { pipelineId: 'p', sha: '2'.repeat(40), trigger: 'ci' as const };
    const err = await errorFrom(() => new MockActivityEnvironment({ taskQueue }, { client }).run(activities.signalLane, { app: APP, environment: 'staging', signal: 'acquire' as const, request }));
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true, message: `app "${APP}" has no environment "staging" (it has: integration, production)` });
    await expect(client.workflow.getHandle(laneWorkflowId(taskQueue, APP, 'staging')).describe()).rejects.toThrow();
  });

  it('msUntilDeployWindow: 0 inside a window or without windows, else the time until the next one opens', async () => {
    const env = new MockActivityEnvironment();
    // Tuesday 1 December 2026, London is on UTC.
    const at = (iso: string) => Date.parse(iso);
    await expect(env.run(activities.msUntilDeployWindow, { app: APP, environment: 'production', nowMs: at('2026-12-01T10:00:00Z') })).resolves.toBe(0);
    await expect(env.run(activities.msUntilDeployWindow, { app: APP, environment: 'production', nowMs: at('2026-12-01T08:30:00Z') })).resolves.toBe(60 * 60_000);
    // Friday evening: Monday 09:30.
    await expect(env.run(activities.msUntilDeployWindow, { app: APP, environment: 'production', nowMs: at('2026-12-04T17:30:00Z') })).resolves.toBe(at('2026-12-07T09:30:00Z') - at('2026-12-04T17:30:00Z'));
    await expect(env.run(activities.msUntilDeployWindow, { app: APP, environment: 'integration', nowMs: at('2026-12-05T03:00:00Z') })).resolves.toBe(0);
  });
});
