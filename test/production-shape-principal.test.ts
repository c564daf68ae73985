/**
 * What Temporal 1.31 records of who sent a decision, on docker-compose.yml's server built from source with its JWT
 * authorizer and claim mapper (keys from an identity provider's JWKS) and `frontend.enablePrincipalPropagation`,
 * and the `temporal-principal` approval channel that stands on it (docs/production.md, "Who can do what").
 *
 * The server stamps each history event with the principal of the call that wrote it: `{ type: 'jwt', name: <sub> }`
 * of a token it verified. A signal's event is written by the sender's call. (An update's events are written when the
 * worker completes its workflow task, so by the server's source they carry the worker's principal: the channel
 * serves signals only.) The deploy worker here is a real process that connects with its own token, short-lived
 * and renewed from its file (DEPLOY_TEMPORAL_TOKEN_FILE) while it runs.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { startPipeline } from '../client/pipelines';
import type { PipelineStatus } from '../common/types';
import { IdentityProviderSimulator } from '../simulators/identity-provider';
import { approveSignal, statusQuery, WORKFLOW_TYPE } from '../workflows/definitions';
import { startCrashHarness, type CrashHarness, type WorkerProcess } from './support/crash-harness';
import { NAMESPACE, startProductionServer, type ProductionServer } from './support/production-server';
import { errorFrom, waitFor } from './support/env';
import { uniqueTaskQueue, workflowBundlePath } from './support/temporal';

const APP = 'whitehall';
const APPROVERS = ['alice', 'bob'];
/** Long enough to start the worker; the file holds a renewed one well before it ends (TOKEN_FILE_RECHECK_MS). */
const WORKER_TOKEN_LIFETIME_S = 25;

describe("docker-compose.yml's Temporal server with its JWT authorizer and principal propagation", () => {
  const idp = new IdentityProviderSimulator({ host: '127.0.0.1' });
  let prod: ProductionServer;
  let h: CrashHarness;
  let taskQueue: string;
  let worker: WorkerProcess;
  let firstWorkerTokenExpiresAt: number;
  const clients: Client[] = [];

  async function clientOf(token?: string, metadata: Record<string, string> = {}): Promise<Client> {
    const connection = await Connection.connect({ address: prod.server.address, metadata: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...metadata } });
    const client = new Client({ connection, namespace: NAMESPACE });
    clients.push(client);
    return client;
  }
  const person = (subject: string, role: 'read' | 'write', lifetimeSeconds?: number) => idp.mintAccessToken({ subject, permissions: [`${NAMESPACE}:${role}`], lifetimeSeconds });

  beforeAll(async () => {
    await idp.start();
    prod = await startProductionServer({
      authorization: { jwksUrl: idp.jwksUrl },
      adminToken: idp.mintAccessToken({ subject: 'operator', permissions: ['temporal-system:admin'] }),
      dynamicConfig: { 'frontend.enablePrincipalPropagation': true },
    });
    h = await startCrashHarness({
      server: prod.shared,
      clientApiKey: person('ci-bot', 'write'),
      stack: {
        apps: { [APP]: { environments: { integration: {}, production: { continuousDeployment: false, approvers: APPROVERS, identity: 'verified' } } } },
        buildDelayMs: 100,
        polling: { initialIntervalMs: 100, maxIntervalMs: 300 },
      },
    });
    taskQueue = uniqueTaskQueue('principal');
    // The worker's own token, which the server's authorizer wants of every caller, short-lived as an identity
    // provider's are, in a file renewed while the worker runs.
    const tokenFile = path.join(h.dataDir, 'worker-token');
    writeFileSync(tokenFile, `${person('deploy-worker', 'write', WORKER_TOKEN_LIFETIME_S)}\n`);
    firstWorkerTokenExpiresAt = Date.now() + WORKER_TOKEN_LIFETIME_S * 1000;
    worker = await h.startWorker(taskQueue, {
      env: { DEPLOY_TEMPORAL_TOKEN_FILE: tokenFile, TEMPORAL_TLS: 'false', DEPLOY_TEMPORAL_PRINCIPALS: 'jwt:alice@example.org=alice, jwt:carol@example.org=carol' },
    });
    writeFileSync(tokenFile, person('deploy-worker', 'write'));
  }, 300_000);

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.connection.close().catch(() => undefined)));
    await h?.close();
    await prod?.close();
    await idp.close();
  }, 60_000);

  /** A pipeline-shaped workflow nobody runs: only what the server writes of it matters here. */
  async function startedBy(token: string): Promise<string> {
    const workflowId = `principal-${uniqueTaskQueue('run')}`;
    await (await clientOf(token)).workflow.start(WORKFLOW_TYPE, { taskQueue: uniqueTaskQueue('nobody'), workflowId, args: [] });
    return workflowId;
  }

  it('refuses a caller without a token, with a token it cannot verify, or whose token only lets it read', async () => {
    const workflowId = await startedBy(person('ci-bot', 'write'));
    expect((await errorFrom(async () => (await clientOf()).workflow.getHandle(workflowId).describe())).message).toMatch(/describe/i);
    const forged = `${person('alice', 'write').slice(0, -8)}AAAAAAAA`;
    await expect(clientOf(forged).then((client) => client.workflow.getHandle(workflowId).describe())).rejects.toThrow();
    const reader = await clientOf(person('viewer', 'read'));
    await expect(reader.workflow.getHandle(workflowId).describe()).resolves.toMatchObject({ workflowId });
    await expect(reader.workflow.getHandle(workflowId).signal(approveSignal, { environment: 'production', approver: 'viewer' })).rejects.toThrow();
  });

  it("stamps a signal's event with the verified subject of the sender's token, whatever name or principal header the sender claims", async () => {
    const workflowId = await startedBy(person('ci-bot', 'write'));
    // The headers the server itself uses between its services: a caller's are stripped at the frontend.
    const alice = await clientOf(person('alice@example.org', 'write'), { 'temporal-principal-type': 'jwt', 'temporal-principal-name': 'mallory' });
    await alice.workflow.getHandle(workflowId).signal(approveSignal, { environment: 'production', approver: 'mallory' });

    const { events } = await (await clientOf(person('viewer', 'read'))).workflow.getHandle(workflowId).fetchHistory();
    const started = events!.find((e) => e.workflowExecutionStartedEventAttributes);
    const signaled = events!.find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === approveSignal.name);
    expect(started!.principal).toEqual(expect.objectContaining({ type: 'jwt', name: 'ci-bot' }));
    expect(signaled!.principal).toEqual(expect.objectContaining({ type: 'jwt', name: 'alice@example.org' }));
    // What the signal says of its sender is only what the sender typed.
    expect(Buffer.from(signaled!.workflowExecutionSignaledEventAttributes!.input!.payloads![0]!.data!).toString()).toContain('"approver":"mallory"');
  });

  describe('the temporal-principal approval channel: a decision signal is proved by the principal of its sender', () => {
    const statusOf = (workflowId: string, wanted: (s: PipelineStatus) => boolean, description: string) =>
      waitFor(
        async () => {
          const status = await h.client.workflow.getHandle(workflowId).query(statusQuery);
          return wanted(status) ? status : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100, description },
      );
    const refusedWith = (workflowId: string, reason: RegExp) =>
      statusOf(workflowId, (s) => reason.test(s.environments[1]?.refusedDecision?.reason ?? ''), `a refusal matching ${reason}`);

    it("refuses an unmapped principal, a sender other than the name the signal gives, and a mapped non-approver; then deploys on an approver's signal, recorded as the mapped login", async () => {
      const sha = await h.stack.merge(APP, { authorLogin: 'dora' });
      const { workflowId } = await startPipeline({ app: APP, ref: sha, requestedBy: 'ci' }, { client: h.client, taskQueue, catalogue: h.stack.catalogue, sourceHost: h.stack.dependencies.sourceHost });
      await statusOf(workflowId, (s) => s.awaitingApprovalFor === 'production', 'the pipeline to wait at production');
      const signalAs = async (subject: string, request: Record<string, string>) =>
        (await clientOf(person(subject, 'write'))).workflow.getHandle(workflowId).signal(approveSignal, { environment: 'production', ...request } as never);
      const alicesDecision = { approver: 'alice', comment: 'ship it' };

      // Someone whose principal is mapped to nobody sends, word for word, the decision alice will send.
      await signalAs('mallory@example.org', alicesDecision);
      await refusedWith(workflowId, /^production takes only verified decisions, .*; nor does the signal's Temporal principal prove it: its sender, Temporal principal jwt:mallory@example\.org, is mapped to no GitHub login/);
      // carol is known, but not as the approver her signal names.
      await signalAs('carol@example.org', { approver: 'alice' });
      await refusedWith(workflowId, /; nor does the signal's Temporal principal prove it: it was sent by Temporal principal jwt:carol@example\.org, who is carol, not alice$/);
      // Named truthfully, carol is not among production's approvers.
      await signalAs('carol@example.org', { approver: 'carol' });
      const refused = await refusedWith(workflowId, /^carol may not approve deploys to production \(approvers: alice, bob\)$/);
      expect(refused).toMatchObject({ status: 'AWAITING_APPROVAL', awaitingApprovalFor: 'production' });
      expect(refused.environments[1]).toMatchObject({ state: 'AWAITING_APPROVAL', refusedDecision: { claimedBy: 'carol' } });
      expect(refused.environments[1]!.approval).toBeUndefined();

      // The worker's first token has expired: it goes on with the one its file holds now.
      await sleep(Math.max(0, firstWorkerTokenExpiresAt + 1000 - Date.now()));
      expect(worker.lines.some((line) => line.includes('the worker now uses the renewed Temporal token'))).toBe(true);

      // alice's own signal, the fourth approve signal of the run, is hers alone.
      await signalAs('alice@example.org', alicesDecision);
      const result = (await h.client.workflow.getHandle(workflowId).result()) as PipelineStatus;
      expect(result.status).toBe('SUCCEEDED');
      expect(result.environments[1]).toMatchObject({
        state: 'DEPLOYED',
        approval: {
          by: 'alice',
          channel: 'temporal-principal',
          comment: 'ship it',
          evidence: { principalType: 'jwt', principalName: 'alice@example.org', signal: 'approve', eventId: expect.stringMatching(/^\d+$/) },
        },
      });
      const history = await h.client.workflow.getHandle(workflowId).fetchHistory();
      const { events } = history;
      const approveEvents = events!.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'approve');
      expect(approveEvents.map((e) => e.principal?.name)).toEqual(['mallory@example.org', 'carol@example.org', 'carol@example.org', 'alice@example.org']);
      expect(String(approveEvents[3]!.eventId)).toBe(result.environments[1]!.approval!.evidence!.eventId);
      // The worker connected with a token of its own: the server knows its calls as its.
      expect(events!.find((e) => e.workflowTaskCompletedEventAttributes)?.principal).toEqual(expect.objectContaining({ type: 'jwt', name: 'deploy-worker' }));
      expect(h.stack.release.deployments.filter((d) => d.version === sha && d.environment === 'production')).toHaveLength(1);
      // The new path is guarded, and a worker replays it as it ran.
      const markers = events!.flatMap((e) => Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((d) => d.payloads ?? []));
      expect(markers.map((payload) => Buffer.from(payload.data ?? []).toString()).join('\n')).toContain('"signal-principal"');
      await Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() } }, history, workflowId);
    });
  });
});
