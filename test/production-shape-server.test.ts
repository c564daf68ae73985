/**
 * The pipelines on the Temporal server that docker-compose.yml runs, without containers (docs/production.md
 * "Without Docker"): temporal-server and temporal-sql-tool built from source at the compose file's version, on
 * PostgreSQL from Debian's packages, set up by the compose jobs' own scripts. Deploy workers are real processes
 * (test/support/crash-worker.ts) against the simulators; this suite's server is its own, not the jest run's dev server.
 *
 * It shows what the dev server (SQLite) cannot: a CD app reaching production, an approval and a rollback through
 * PostgreSQL's persistence and visibility stores; two workers sharing a task queue, one killed in the middle of a
 * deploy; and the server killed with `kill -9` and restarted, PostgreSQL keeping every pipeline, lane and timer.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { parse as parseYaml } from 'yaml';
import { approvePipeline, listHolds, listPipelines, startPipeline } from '../client/pipelines';
import type { PipelineStatus } from '../common/types';
import { registerSearchAttributes, setUpSchema } from '../harness/temporal-server';
import { findTemporalCli } from '../harness/temporal-cli';
import { laneStateQuery, laneWorkflowId, SEARCH_ATTRIBUTES, statusQuery } from '../workflows/definitions';
import { listCommits } from './support/charts-repo';
import { startCrashHarness, type CrashHarness, type WorkerProcess } from './support/crash-harness';
import { waitFor } from './support/env';
import { NAMESPACE, startProductionServer, type ProductionServer } from './support/production-server';
import { uniqueTaskQueue } from './support/temporal';
import { localActivityMarker, workflowTaskOf } from './support/history-steps';

const ROOT = path.resolve(__dirname, '..');
const compose = parseYaml(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, { image?: string; environment?: Record<string, string> }>;
};
const ENVIRONMENTS = ['integration', 'staging', 'production'];
const GATED_PRODUCTION = { environments: { integration: {}, staging: {}, production: { continuousDeployment: false } } };

async function resultOf(client: Client, workflowId: string, timeoutMs = 90_000): Promise<PipelineStatus> {
  const handle = client.workflow.getHandle(workflowId);
  // Looked at again and again, so that a call cut by a server restart is simply made once more.
  await waitFor(async () => (await handle.describe()).status.name !== 'RUNNING', { timeoutMs, intervalMs: 200, description: `${workflowId} to end` });
  return (await handle.result()) as PipelineStatus;
}

async function statusOf(client: Client, workflowId: string, wanted: (s: PipelineStatus) => boolean, description: string): Promise<PipelineStatus> {
  return waitFor(
    async () => {
      const status = await client.workflow.getHandle(workflowId).query(statusQuery);
      return wanted(status) ? status : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100, description },
  );
}

/** Workflow IDs a visibility query finds, once it finds `expected` (visibility is eventually consistent). */
async function found(client: Client, query: string, expected: string): Promise<string[]> {
  return waitFor(
    async () => {
      const ids: string[] = [];
      for await (const execution of client.workflow.list({ query })) ids.push(execution.workflowId);
      return ids.includes(expected) ? ids : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200, description: `${expected} in \`${query}\`` },
  );
}

describe("docker-compose.yml's Temporal server, built from source, on PostgreSQL", () => {
  let prod: ProductionServer;
  let h: CrashHarness;
  let taskQueue: string;

  beforeAll(async () => {
    prod = await startProductionServer();
    h = await startCrashHarness({
      server: prod.shared,
      stack: {
        apps: { frontend: {}, collections: {}, whitehall: {}, publisher: GATED_PRODUCTION, licensing: { ...GATED_PRODUCTION, approvalTimeout: '8s' } },
        buildDelayMs: 200,
        polling: { initialIntervalMs: 100, maxIntervalMs: 300 },
        // A step whose worker died runs again within seconds, not after the production defaults.
        stepRetry: { maximumAttempts: 10, maximumInterval: '2s', attemptTimeout: '4s', heartbeatTimeout: '3s' },
      },
      workerEnv: { DEPLOY_TEST_STICKY_TIMEOUT: '1s' },
    });
    taskQueue = uniqueTaskQueue('prod');
    await h.startWorker(taskQueue);
  }, 240_000);

  afterAll(async () => {
    await h?.close();
    await prod?.close();
  }, 60_000);

  const start = async (app: string, queue = taskQueue) => {
    const sha = await h.stack.merge(app);
    const { workflowId } = await startPipeline({ app, ref: sha, requestedBy: 'ci' }, { client: h.client, taskQueue: queue, catalogue: h.stack.catalogue, sourceHost: h.stack.dependencies.sourceHost });
    return { sha, workflowId };
  };

  /** Charts commits and release records of one release, per environment. */
  async function effectsOf(app: string, sha: string): Promise<Record<string, { commits: number; releases: number }>> {
    const commits = await listCommits(h.stack.charts.bareDir);
    const repo = h.stack.repoOf(app);
    return Object.fromEntries(
      ENVIRONMENTS.map((env) => [
        env,
        {
          commits: commits.filter((c) => c.subject === `Deploy ${app} ${sha} to ${env}`).length,
          releases: h.stack.release.deployments.filter((d) => d.repo === repo && d.version === sha && d.environment === env).length,
        },
      ]),
    );
  }
  const onceEach = Object.fromEntries(ENVIRONMENTS.map((env) => [env, { commits: 1, releases: 1 }]));

  it("is the version docker-compose.yml names, configured by the compose `temporal` service's variables, set up by its two jobs' scripts", async () => {
    const image = compose.services.temporal!.image!;
    expect(image).toBe(`temporalio/server:\${TEMPORAL_VERSION:-${prod.build.version}}`);
    const info = await h.client.connection.workflowService.getSystemInfo({});
    expect(info.serverVersion).toBe(prod.build.version);

    // Every variable the compose service sets, this server is given too (its values point at loopback).
    const env = prod.server.environment;
    expect(Object.keys(env)).toEqual(expect.arrayContaining(Object.keys(compose.services.temporal!.environment!)));
    expect(env.DB).toBe(compose.services.temporal!.environment!.DB);

    expect(prod.schemaOutput).toContain('Temporal schema is up to date');
    const { customAttributes } = await h.client.connection.operatorService.listSearchAttributes({ namespace: NAMESPACE });
    // IndexedValueType 2 is KEYWORD.
    for (const key of SEARCH_ATTRIBUTES) expect({ name: key.name, type: Number(customAttributes?.[key.name]) }).toEqual({ name: key.name, type: 2 });

    // Both jobs run on every start of the compose stack: a second run changes nothing and succeeds.
    await expect(setUpSchema(prod.build, prod.db)).resolves.toContain('Temporal schema is up to date');
    const again = await registerSearchAttributes({ cliPath: await findTemporalCli(), address: prod.server.address, namespace: NAMESPACE });
    for (const key of SEARCH_ATTRIBUTES) expect(again).toContain(`search attribute ${key.name} (Keyword) is registered in namespace ${NAMESPACE}`);
  });

  it('deploys a CD app through every environment to production, each side effect once, found by its search attributes', async () => {
    const { sha, workflowId } = await start('frontend');
    const result = await resultOf(h.client, workflowId);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((e) => [e.environment, e.state])).toEqual(ENVIRONMENTS.map((env) => [env, 'DEPLOYED']));
    expect(await effectsOf('frontend', sha)).toEqual(onceEach);

    expect(await found(h.client, `DeployApp = "frontend" AND DeployCommit = "${sha}" AND DeployStatus = "SUCCEEDED"`, workflowId)).toEqual([workflowId]);
    expect(await found(h.client, `DeployTrigger = "ci" AND DeployApp = "frontend" AND ExecutionStatus = "Completed"`, workflowId)).toContain(workflowId);
  });

  it('waits for approval before production, is listed as waiting, and deploys once approved', async () => {
    const { sha, workflowId } = await start('publisher');
    await statusOf(h.client, workflowId, (s) => s.awaitingApprovalFor === 'production', 'the pipeline to wait for production approval');
    expect(await found(h.client, 'DeployStatus = "AWAITING_APPROVAL" AND DeployApp = "publisher"', workflowId)).toEqual([workflowId]);
    const listed = await listPipelines(h.client, { app: 'publisher', status: 'AWAITING_APPROVAL' });
    expect(listed).toEqual([expect.objectContaining({ workflowId, commit: sha, status: 'AWAITING_APPROVAL', environment: 'production', trigger: 'ci' })]);

    const receipt = await approvePipeline(h.client, workflowId, { environment: 'production', approver: 'alice', comment: 'on PostgreSQL' });
    expect(receipt).toMatchObject({ environment: 'production' });
    const result = await resultOf(h.client, workflowId);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments[2]).toMatchObject({ state: 'DEPLOYED', approval: { by: 'alice', comment: 'on PostgreSQL' } });
    expect(await effectsOf('publisher', sha)).toEqual(onceEach);
    expect(await listPipelines(h.client, { app: 'publisher', status: 'AWAITING_APPROVAL' })).toEqual([]);
  });

  it('rolls production back after a failed smoke test and holds it, the hold found through visibility', async () => {
    const { sha, workflowId } = await start('collections');
    h.stack.endpoints.failChecks('collections', 'production', { status: 503 });
    let result: PipelineStatus;
    try {
      result = await resultOf(h.client, workflowId).catch(async () => h.client.workflow.getHandle(workflowId).query(statusQuery));
    } finally {
      h.stack.endpoints.restore('collections', 'production');
    }
    expect(result.status).toBe('ROLLED_BACK');
    expect(result.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'DEPLOYED', 'ROLLED_BACK']);
    const subjects = (await listCommits(h.stack.charts.bareDir)).map((c) => c.subject);
    expect(subjects).toContain(`Roll back collections to initial in production: ${sha} failed`);
    expect(await found(h.client, 'DeployStatus = "ROLLED_BACK" AND DeployApp = "collections"', workflowId)).toEqual([workflowId]);

    const holds = await waitFor(async () => {
      const rows = await listHolds(h.client, { taskQueue, app: 'collections', environment: 'production' });
      return rows.length > 0 ? rows : undefined;
    }, { timeoutMs: 20_000, description: 'the hold on collections in production, listed' });
    expect(holds).toEqual([expect.objectContaining({ app: 'collections', environment: 'production' })]);
  });

  it('shares a task queue between two worker processes: one killed -9 in the middle of a deploy, the other finishes it, nothing doubled', async () => {
    const queue = uniqueTaskQueue('shared');
    // The first worker holds the staging bump's result after pushing the commit, until it is killed.
    const first = await h.startWorker(queue, { crashAfter: 'bumpImageTag@staging', crashMode: 'pause' });
    const { sha, workflowId } = await start('whitehall', queue);
    await waitFor(() => first.crashPoints()[0], { timeoutMs: 60_000, intervalMs: 20, description: 'the first worker to push the staging commit' });
    const second: WorkerProcess = await h.startWorker(queue);
    await first.kill();

    const result = await resultOf(h.client, workflowId);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'DEPLOYED', 'DEPLOYED']);
    expect(await effectsOf('whitehall', sha)).toEqual(onceEach);

    // The bump ran again on the second worker, and both took the pipeline's workflow tasks.
    const { events } = await h.client.workflow.getHandle(workflowId).fetchHistory();
    const identities = (kind: 'activityTaskStartedEventAttributes' | 'workflowTaskCompletedEventAttributes') =>
      new Set(events!.flatMap((e) => (e[kind]?.identity ? [e[kind]!.identity!.split('@')[0]] : [])));
    expect([...identities('workflowTaskCompletedEventAttributes')]).toEqual(expect.arrayContaining([String(first.pid), String(second.pid)]));
    // A local activity: the second worker ran it again, and the workflow task that recorded it was the second's.
    const bumpedAgain = second.stepsDone().find((d) => d.workflowId === workflowId && d.activityType === 'bumpImageTag' && d.environment === 'staging');
    expect(bumpedAgain).toBeDefined();
    const marker = events!.findIndex((e) => localActivityMarker(e)?.activity_id === bumpedAgain!.activityId && localActivityMarker(e)?.activity_type === 'bumpImageTag');
    expect(events![workflowTaskOf(events!, marker)]!.workflowTaskCompletedEventAttributes!.identity).toMatch(new RegExp(`^${second.pid}@`));
    await second.stop();
  });

  it('keeps every pipeline, lane and timer in PostgreSQL across a kill -9 and restart of the server', async () => {
    const waiting = await start('publisher');
    await statusOf(h.client, waiting.workflowId, (s) => s.awaitingApprovalFor === 'production', 'the publisher pipeline to wait for production approval');
    const lane = h.client.workflow.getHandle(laneWorkflowId(taskQueue, 'publisher', 'production'));
    await waitFor(async () => (await lane.query(laneStateQuery)).awaitingApproval.some((r) => r.pipelineId === waiting.workflowId), {
      description: 'the production lane to know the pipeline waits for approval',
    });
    const expiring = await start('licensing');
    await statusOf(h.client, expiring.workflowId, (s) => s.awaitingApprovalFor === 'production', 'the licensing pipeline to wait for production approval');
    const waitingSince = Date.now();
    const laneBefore = await lane.query(laneStateQuery);

    await prod.server.kill();
    // The approval timer (8 s) comes due while the server is down.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 9_000 - (Date.now() - waitingSince))));
    await prod.server.start();

    expect(await h.client.workflow.getHandle(waiting.workflowId).query(statusQuery)).toMatchObject({ status: 'AWAITING_APPROVAL', awaitingApprovalFor: 'production' });
    expect(await lane.query(laneStateQuery)).toEqual(laneBefore);
    expect((await lane.describe()).status.name).toBe('RUNNING');
    expect(await found(h.client, 'DeployStatus = "AWAITING_APPROVAL" AND DeployApp = "publisher"', waiting.workflowId)).toEqual([waiting.workflowId]);

    const expired = await resultOf(h.client, expiring.workflowId);
    expect(expired.status).toBe('EXPIRED');
    expect(expired.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'DEPLOYED', 'EXPIRED']);
    expect(await found(h.client, 'DeployStatus = "EXPIRED" AND DeployApp = "licensing"', expiring.workflowId)).toEqual([expiring.workflowId]);

    await approvePipeline(h.client, waiting.workflowId, { environment: 'production', approver: 'alice' });
    const result = await resultOf(h.client, waiting.workflowId);
    expect(result.status).toBe('SUCCEEDED');
    expect(await effectsOf('publisher', waiting.sha)).toEqual(onceEach);
  });
});
