import type { WorkflowHandle } from '@temporalio/client';
import { Runtime } from '@temporalio/worker';
import { shortSha } from '../common/names';
import { FINAL_STATUSES, type PipelineStatus } from '../common/types';
import { readFileAt } from './support/charts-repo';
import { waitFor } from './support/env';
import { startHarness, type PipelineHarness } from './support/pipeline';
import { imageTagFile, mainLine, syncsOf, tagHistory } from './support/safety';
import { acquireLaneSignal, awaitingApprovalSignal, clearHoldUpdate, DeployStatusAttribute, LANE_WORKFLOW_TYPE, laneStateQuery, laneWorkflowId, releaseLaneSignal, setHoldSignal } from '../workflows/definitions';

const ENVIRONMENTS = ['integration', 'staging', 'production'];

/** What the `__temporal_workflow_metadata` query answers: Web UI's list of a workflow's handlers. */
interface WorkflowMetadata {
  definition: { type: string; signalDefinitions: { name: string; description?: string }[] };
}

describe('lanes: one deploy per app and environment at a time, never backwards', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({
      apps: {
        whitehall: {},
        // Its lane is driven by hand below; clearing its hold asks the catalogue who may.
        'held-app': {},
        burst: {},
        follows: {},
        'follows-bad': {},
        'in-order': { queue: 'in-order' },
        'follows-main': { onDivergence: 'deploy' },
        'slow-sync': {},
        publisher: {
          environments: {
            integration: { continuousDeployment: true },
            staging: { continuousDeployment: false },
            production: { continuousDeployment: false },
          },
        },
      },
    });
  });
  afterAll(async () => h?.close());

  /** Idle lanes stand in for pipelines: any running workflow takes a lane's signals. Returns their workflow IDs. */
  async function standInPipelines(prefix: string, names: string[], sha: string): Promise<string[]> {
    const started = await Promise.all(
      names.map((name) =>
        h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
          workflowId: laneWorkflowId(h.taskQueue, `${prefix}-${name}`, 'staging'),
          taskQueue: h.taskQueue,
          args: [{ app: `${prefix}-${name}`, environment: 'staging' }],
          signal: acquireLaneSignal,
          signalArgs: [{ pipelineId: 'nobody', sha, trigger: 'ci' as const }],
        }),
      ),
    );
    return started.map((handle) => handle.workflowId);
  }

  /** The signals of one name a lane has sent, by recipient, in order, from its history. */
  async function signalsSent(lane: WorkflowHandle, signalName: string): Promise<Map<string, unknown[]>> {
    const sent = new Map<string, unknown[]>();
    for (const event of (await lane.fetchHistory()).events ?? []) {
      const initiated = event.signalExternalWorkflowExecutionInitiatedEventAttributes;
      if (initiated?.signalName !== signalName) continue;
      const to = initiated.workflowExecution!.workflowId!;
      sent.set(to, [...(sent.get(to) ?? []), JSON.parse(Buffer.from(initiated.input!.payloads![0]!.data!).toString('utf8'))]);
    }
    return sent;
  }

  /** The token of the lane's last grant to a pipeline: what that pipeline sends back with its release. */
  async function grantToken(lane: WorkflowHandle, pipelineId: string): Promise<string> {
    const grants = (await signalsSent(lane, 'laneGranted')).get(pipelineId) ?? [];
    const token = (grants.at(-1) as { token?: string } | undefined)?.token;
    if (!token) throw new Error(`${lane.workflowId} has granted ${pipelineId} nothing`);
    return token;
  }

  /** What a lane told each pipeline about why it waits, in order. */
  async function waitingReasons(lane: WorkflowHandle): Promise<Map<string, string[]>> {
    return new Map([...(await signalsSent(lane, 'laneWaiting'))].map(([to, signals]) => [to, signals.map((signal) => (signal as { reason: string }).reason)]));
  }

  it('three commits merged within a second: every environment ends on the newest, in order, one deploy at a time', async () => {
    const shas = [await h.stack.merge('whitehall'), await h.stack.merge('whitehall'), await h.stack.merge('whitehall')];
    const order = mainLine(h.stack, 'whitehall');
    /** Position on the main branch, by the GitHub simulator's commit graph (the tag scheme is the SHA). */
    const age = (tag: string | undefined): number => {
      if (tag === 'initial') return -1;
      const index = order.indexOf(tag ?? '');
      if (index < 0) throw new Error(`${tag} is not a commit on whitehall's main branch`);
      return index;
    };
    expect(shas.map(age)).toEqual([1, 2, 3]);
    const dates = shas.map((sha) => Date.parse(h.stack.github.getCommitRecord('alphagov/whitehall', sha)!.date));
    expect(dates[2]! - dates[0]!).toBeLessThanOrEqual(1000);
    h.stack.endpoints.clearRequests();

    // CI starts all three at once.
    const started = await Promise.all(shas.map((sha) => h.startCi('whitehall', sha)));
    // None fails: result() throws for a failed pipeline.
    const results: PipelineStatus[] = await Promise.all(started.map((s) => h.handle(s.workflowId).result()));

    const newest = results[2]!;
    expect(newest.status).toBe('SUCCEEDED');
    expect(newest.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'DEPLOYED', 'DEPLOYED']);
    for (const [index, older] of results.slice(0, 2).entries()) {
      expect(['SUPERSEDED', 'SUCCEEDED']).toContain(older.status);
      expect((await h.handle(started[index]!.workflowId).describe()).typedSearchAttributes.get(DeployStatusAttribute)).toBe(older.status);
      if (older.status === 'SUPERSEDED') {
        // It stopped where a newer commit already ran, and says which.
        const stopped = older.environments.find((e) => e.state === 'SUPERSEDED')!;
        // Either where it stopped, or, on its way there, the environment before, which the newer one deployed after it.
        const match = /^superseded by ([0-9a-f]{7}) \((\S+)\), (?:already deployed to (\w+)|deployed to (\w+) after us and on its way here)$/.exec(older.failure ?? '');
        expect(match).not.toBeNull();
        if (match![3]) expect(match![3]).toBe(stopped.environment);
        else expect(match![4]).toBe(older.environments[older.environments.indexOf(stopped) - 1]!.environment);
        const newer = started.findIndex((s) => s.workflowId === match![2]);
        expect(newer).toBeGreaterThan(index);
        expect(match![1]).toBe(shortSha(shas[newer]!));
        // Nothing after it was touched.
        const after = older.environments.slice(older.environments.indexOf(stopped) + 1);
        expect(after.every((e) => e.state === 'PENDING')).toBe(true);
      }
    }

    for (const env of ENVIRONMENTS) {
      // Every environment ends on the newest commit.
      expect(await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('whitehall', env))).toContain(`image_tag: ${shas[2]}`);
      expect(h.stack.argo.currentTag('whitehall', env)).toBe(shas[2]);

      // The charts history of the file never goes backwards.
      const history = await tagHistory(h.stack.charts.bareDir, imageTagFile('whitehall', env));
      expect(history[0]!.tag).toBe('initial');
      const deploys = history.slice(1);
      expect(deploys.length).toBeGreaterThanOrEqual(1);
      for (const change of deploys) expect(change.subject).toBe(`Deploy whitehall ${change.tag} to ${env}`);
      const ages = history.map((change) => age(change.tag));
      for (let i = 1; i < ages.length; i++) expect(ages[i]).toBeGreaterThan(ages[i - 1]!);
      expect(deploys.at(-1)!.tag).toBe(shas[2]);

      // Argo CD synced each charts change once, each to the end, before the next one began: no sync was
      // cut short by another deploy, and none started before the previous rollout was Healthy.
      const syncs = syncsOf(h.stack.argo, `whitehall-${env}`);
      expect(syncs.map((s) => s.tag)).toEqual(deploys.map((d) => d.tag));
      for (const sync of syncs) expect(sync).toMatchObject({ phase: 'Succeeded', health: 'Healthy' });
      for (let i = 1; i < syncs.length; i++) expect(syncs[i]!.startedAt.getTime()).toBeGreaterThanOrEqual(syncs[i - 1]!.settledAt!.getTime());

      // No smoke test of this environment ran while a rollout there was under way.
      const smokes = h.stack.endpoints.requests.filter((r) => r.path === `/whitehall/${env}/healthcheck`);
      expect(smokes.length).toBeGreaterThanOrEqual(syncs.length);
      for (const smoke of smokes) {
        const during = syncs.find((s) => s.startedAt.getTime() < smoke.time.getTime() && smoke.time.getTime() < s.settledAt!.getTime());
        expect(during).toBeUndefined();
      }

      // One release record per deploy, in the same order.
      const records = h.stack.release.deployments.filter((d) => d.repo === 'alphagov/whitehall' && d.environment === env);
      expect(records.map((r) => r.version)).toEqual(deploys.map((d) => d.tag));

      // The pipelines' own view: the deploys of this environment did not overlap either.
      const spans = results
        .map((r) => r.environments.find((e) => e.environment === env)!)
        .filter((e) => e.startedAt)
        .map((e) => [Date.parse(e.startedAt!), Date.parse(e.finishedAt!)] as const)
        .sort((a, b) => a[0] - b[0]);
      expect(spans).toHaveLength(deploys.length);
      for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    }
  });

  /** The commits merged on the app's main branch, and their order there (the tag scheme is the SHA). */
  async function mergeBurst(app: string, count: number): Promise<{ shas: string[]; age: (tag: string) => number }> {
    const shas: string[] = [];
    for (let i = 0; i < count; i++) shas.push(await h.stack.merge(app));
    const order = mainLine(h.stack, app);
    const dates = shas.map((sha) => Date.parse(h.stack.github.getCommitRecord(`alphagov/${app}`, sha)!.date));
    expect(dates.at(-1)! - dates[0]!).toBeLessThanOrEqual(1000);
    return { shas, age: (tag) => (tag === 'initial' ? -1 : order.indexOf(tag)) };
  }

  it('five commits merged within a second: the newest deploys first after the first to ask, the older ones end SUPERSEDED naming a newer one that deployed, without holding the lane, no environment goes backwards', async () => {
    const { shas, age } = await mergeBurst('burst', 5);
    const started = await Promise.all(shas.map((sha) => h.startCi('burst', sha)));
    const results: PipelineStatus[] = await Promise.all(started.map((s) => h.handle(s.workflowId).result()));
    expect(results[4]!.status).toBe('SUCCEEDED');
    expect(results[4]!.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'DEPLOYED', 'DEPLOYED']);

    for (const env of ENVIRONMENTS) {
      const deploys = (await tagHistory(h.stack.charts.bareDir, imageTagFile('burst', env))).slice(1);
      // The first to ask deploys at once; once it is done the newest goes, and nothing after it.
      expect(deploys.length).toBeGreaterThanOrEqual(1);
      expect(deploys.length).toBeLessThanOrEqual(2);
      const ages = deploys.map((d) => age(d.tag ?? ''));
      for (let i = 1; i < ages.length; i++) expect(ages[i]).toBeGreaterThan(ages[i - 1]!);
      expect(deploys.at(-1)!.tag).toBe(shas[4]);
      expect(h.stack.argo.currentTag('burst', env)).toBe(shas[4]);
    }
    // Every older pipeline that did not deploy integration stopped there, before touching it, naming a newer one
    // that deployed there: the newest, or the first to ask when its commit is newer than theirs (it deploys at once).
    const deployedIntegration = started.filter((_, i) => results[i]!.environments[0]!.startedAt !== undefined).map((s) => s.workflowId);
    const supersededBy = new Map<string, number>();
    for (const [i, older] of results.entries()) {
      if (older.environments[0]!.state !== 'SUPERSEDED') continue;
      expect(older.status).toBe('SUPERSEDED');
      const match = /^superseded by ([0-9a-f]{7}) \((\S+)\), already deployed to integration$/.exec(older.failure ?? '');
      expect(match).not.toBeNull();
      const by = started.findIndex((s) => s.workflowId === match![2]);
      expect(deployedIntegration).toContain(match![2]);
      expect(by).toBeGreaterThan(i);
      expect(match![1]).toBe(shortSha(shas[by]!));
      expect(older.environments[0]!.startedAt).toBeUndefined();
      supersededBy.set(started[i]!.workflowId, by);
    }
    expect(supersededBy.size).toBeGreaterThanOrEqual(3);
    // The one that deployed integration first may stay ahead of the newest all the way.
    for (const older of results.slice(0, 4)) expect(['SUPERSEDED', 'SUCCEEDED']).toContain(older.status);

    // Those it superseded never held the integration lane: they heard of the newer one's deploy there, together,
    // and compared. The lane granted only the pipelines that deployed.
    const lane = h.client.workflow.getHandle(laneWorkflowId(h.taskQueue, 'burst', 'integration'));
    const grants = await signalsSent(lane, 'laneGranted');
    const news = await signalsSent(lane, 'newerDeployed');
    expect([...grants.keys()].sort()).toEqual(deployedIntegration.sort());
    expect([...grants.values()].flat()).toHaveLength(deployedIntegration.length);
    for (const [pipelineId, by] of supersededBy) {
      expect(news.get(pipelineId)).toEqual([{ environment: 'integration', pipelineId: started[by]!.workflowId, sha: shas[by] }]);
    }
  });

  /** Starts the oldest commit's pipeline and holds it in integration's sync until the newer ones queue behind it there. */
  async function newerQueueBehindOldest(app: string, shas: string[]): Promise<{ workflowId: string }[]> {
    h.stack.argo.reportStaleFor(`${app}-integration`, 120_000);
    try {
      const oldest = await h.startCi(app, shas[0]!);
      await h.waitForStatus(oldest.workflowId, (s) => s.environments[0]?.state === 'WAITING_FOR_SYNC', 'the oldest to hold the integration lane');
      const newer = await Promise.all(shas.slice(1).map((sha) => h.startCi(app, sha)));
      for (const { workflowId } of newer) await h.waitForStatus(workflowId, (s) => s.environments[0]?.state === 'WAITING_FOR_LANE', 'a newer one to queue behind it');
      return [oldest, ...newer];
    } finally {
      h.stack.argo.reportStaleFor(`${app}-integration`, 0);
    }
  }

  it('the oldest of a burst, deployed to integration before the newer ones queued, waits there and ends SUPERSEDED once the newest has deployed: later environments deploy only the newest', async () => {
    const { shas } = await mergeBurst('follows', 3);
    const started = await newerQueueBehindOldest('follows', shas);
    const [oldest, middle, newest] = await Promise.all(started.map((s) => h.handle(s.workflowId).result()));

    expect(newest!.status).toBe('SUCCEEDED');
    const reason = `superseded by ${shortSha(shas[2]!)} (${started[2]!.workflowId}), deployed to integration after us and on its way here`;
    expect(oldest).toMatchObject({ status: 'SUPERSEDED', failure: reason });
    expect(oldest!.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'SUPERSEDED', 'PENDING']);
    expect(oldest!.environments[1]!.startedAt).toBeUndefined();
    expect(middle).toMatchObject({ status: 'SUPERSEDED', failure: `superseded by ${shortSha(shas[2]!)} (${started[2]!.workflowId}), already deployed to integration` });

    expect((await tagHistory(h.stack.charts.bareDir, imageTagFile('follows', 'integration'))).map((c) => c.tag)).toEqual(['initial', shas[0], shas[2]]);
    for (const env of ['staging', 'production']) {
      expect((await tagHistory(h.stack.charts.bareDir, imageTagFile('follows', env))).map((c) => c.tag)).toEqual(['initial', shas[2]]);
      expect(h.stack.argo.currentTag('follows', env)).toBe(shas[2]);
    }
    expect(h.stack.release.deployments.filter((d) => d.repo === 'alphagov/follows' && d.environment === 'staging').map((d) => d.version)).toEqual([shas[2]]);

    // The oldest asked the integration lane who follows it; the lane named the newest, then said it had deployed.
    const lane = h.client.workflow.getHandle(laneWorkflowId(h.taskQueue, 'follows', 'integration'));
    const told = (await signalsSent(lane, 'newerFollows')).get(started[0]!.workflowId);
    const newer = { pipelineId: started[2]!.workflowId, sha: shas[2] };
    expect(told).toEqual([
      { environment: 'integration', newer },
      { environment: 'integration', newer, deployed: true },
    ]);
    // The newest was granted with the middle one queued behind it, so it asked too: nothing newer followed it.
    const grants = await signalsSent(lane, 'laneGranted');
    expect(grants.get(started[0]!.workflowId)).toEqual([expect.not.objectContaining({ othersQueued: true })]);
    expect(grants.get(started[2]!.workflowId)).toEqual([expect.objectContaining({ tellsFollower: true, othersQueued: true })]);
    expect((await signalsSent(lane, 'newerFollows')).get(started[2]!.workflowId)).toEqual([{ environment: 'integration' }]);
  });

  it('the oldest of a burst goes on when the newer commit it waits for fails in integration', async () => {
    const app = 'follows-bad';
    const { shas } = await mergeBurst(app, 2);
    const started = await newerQueueBehindOldest(app, shas);
    // The oldest's rollout is done; the next one, the newer commit's, ends Degraded.
    await waitFor(
      async () => {
        await h.stack.argo.refresh();
        const application = h.stack.argo.application(`${app}-integration`) as { status?: { health?: { status?: string } } };
        return h.stack.argo.currentTag(app, 'integration') === shas[0] && application.status?.health?.status === 'Healthy';
      },
      { timeoutMs: 30_000, description: 'the oldest to be Healthy in integration' },
    );
    h.stack.argo.degrade(`${app}-integration`, 'Deployment exceeded its progress deadline');
    // A rolled-back pipeline fails its workflow: its status says how it ended.
    const [oldest, newer] = await Promise.all(started.map(({ workflowId }) => h.waitForStatus(workflowId, (s) => FINAL_STATUSES.includes(s.status), 'the pipeline to end', 120_000)));

    expect(newer!.status).toBe('ROLLED_BACK');
    expect(newer!.environments[0]!.state).toBe('ROLLED_BACK');
    expect(oldest!.status).toBe('SUCCEEDED');
    expect(oldest!.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'DEPLOYED', 'DEPLOYED']);
    for (const env of ['staging', 'production']) {
      expect((await tagHistory(h.stack.charts.bareDir, imageTagFile(app, env))).map((c) => c.tag)).toEqual(['initial', shas[0]]);
    }
    const lane = h.client.workflow.getHandle(laneWorkflowId(h.taskQueue, app, 'integration'));
    expect((await signalsSent(lane, 'newerFollows')).get(started[0]!.workflowId)).toEqual([
      { environment: 'integration', newer: { pipelineId: started[1]!.workflowId, sha: shas[1] } },
      { environment: 'integration' },
    ]);
  });

  it('an app whose queue is in-order deploys each commit of a burst in turn', async () => {
    const { shas } = await mergeBurst('in-order', 3);
    // Queued in commit order: each then deploys integration in turn (newest-first would skip the middle one).
    const started = [];
    for (const sha of shas) {
      const pipeline = await h.startCi('in-order', sha);
      await h.waitForStatus(pipeline.workflowId, (s) => s.environments[0]!.state !== 'PENDING', 'the pipeline to reach the integration lane');
      started.push(pipeline);
    }
    await Promise.all(started.map((s) => h.handle(s.workflowId).result()));
    const deploys = (await tagHistory(h.stack.charts.bareDir, imageTagFile('in-order', 'integration'))).slice(1);
    expect(deploys.map((d) => d.tag)).toEqual(shas);
  });

  it('supersedes a pipeline awaiting approval when a newer commit is deployed there; approving it later is refused with that reason', async () => {
    const older = await h.stack.merge('publisher');
    const newer = await h.stack.merge('publisher');
    const first = await h.startCi('publisher', older);
    await h.waitForStatus(first.workflowId, (s) => s.awaitingApprovalFor === 'staging', 'the older pipeline to wait for staging approval');
    const second = await h.startCi('publisher', newer);
    await h.waitForStatus(second.workflowId, (s) => s.awaitingApprovalFor === 'staging', 'the newer pipeline to wait for staging approval');

    const approved = await h.cli(['approve', second.workflowId, '--environment', 'staging', '--approver', 'alice']);
    expect(approved).toMatchObject({ code: 0, out: [`approved staging for ${second.workflowId} as alice`] });

    await h.waitForStatus(first.workflowId, (s) => FINAL_STATUSES.includes(s.status), 'the older pipeline to end');
    const result = await h.handle(first.workflowId).result();
    const reason = `superseded by ${shortSha(newer)} (${second.workflowId}), already deployed to staging`;
    expect(result.status).toBe('SUPERSEDED');
    expect(result.failure).toBe(reason);
    expect(result.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'SUPERSEDED', 'PENDING']);
    expect(result.environments[1]!.approval).toBeUndefined();
    expect((await h.handle(first.workflowId).describe()).typedSearchAttributes.get(DeployStatusAttribute)).toBe('SUPERSEDED');

    const newerStatus = await h.waitForStatus(second.workflowId, (s) => s.awaitingApprovalFor === 'production', 'the newer pipeline to reach production approval');
    expect(newerStatus.environments[1]).toMatchObject({ state: 'DEPLOYED', approval: { by: 'alice' } });
    const stagingFile = await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('publisher', 'staging'));
    expect(stagingFile).toContain(`image_tag: ${newer}`);

    const late = await h.cli(['approve', first.workflowId, '--environment', 'staging', '--approver', 'bob']);
    expect(late.code).toBe(3);
    expect(late.err).toEqual([`deploy: refused: pipeline ${first.workflowId} has already finished: SUPERSEDED (${reason})`]);
    // The refusal changed nothing: staging never ran the older commit.
    expect(await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('publisher', 'staging'))).toBe(stagingFile);
    expect((await tagHistory(h.stack.charts.bareDir, imageTagFile('publisher', 'staging'))).map((c) => c.tag)).toEqual(['initial', newer]);
    expect(h.stack.release.deployments.filter((d) => d.repo === 'alphagov/publisher' && d.environment === 'staging').map((d) => d.version)).toEqual([newer]);
    expect((await h.status(first.workflowId)).status).toBe('SUPERSEDED');

    await h.cli(['reject', second.workflowId, '--environment', 'production', '--approver', 'alice', '--reason', 'end of test']);
    expect((await h.handle(second.workflowId).result()).status).toBe('REJECTED');
  });

  it('does not deploy over a diverged environment on its own: it waits for a person, saying why, and deploys once approved', async () => {
    // A hotfix deployed by hand from a branch: integration runs a commit that main does not have.
    const hotfix = await h.stack.merge('whitehall', { branch: `hotfix-${Date.now()}` });
    await h.stack.charts.writeImageTag('whitehall', 'integration', hotfix, { promote_deployment: true, automatic_deploys_enabled: true });
    const ours = await h.stack.merge('whitehall');
    const { workflowId } = await h.startCi('whitehall', ours);
    const waiting = await h.waitForStatus(workflowId, (s) => s.environments[0]?.state === 'AWAITING_APPROVAL', 'the pipeline to stop at the diverged environment');
    expect(waiting.status).toBe('AWAITING_APPROVAL');
    expect(waiting.environments[0]!.waitingFor).toBe(
      `integration runs ${hotfix}, which has commits ${shortSha(ours)} lacks: deploying would drop them; approve to deploy anyway`,
    );
    expect(await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('whitehall', 'integration'))).toContain(`image_tag: ${hotfix}`);

    expect((await h.cli(['approve', workflowId, '--environment', 'integration', '--approver', 'alice', '--comment', 'the hotfix is in main by other means'])).code).toBe(0);
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments[0]).toMatchObject({ state: 'DEPLOYED', approval: { by: 'alice' } });
    expect(await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('whitehall', 'integration'))).toContain(`image_tag: ${ours}`);
  });

  it('deploys over a diverged environment where the app says so (onDivergence: deploy)', async () => {
    const hotfix = await h.stack.merge('follows-main', { branch: `hotfix-${Date.now()}` });
    await h.stack.charts.writeImageTag('follows-main', 'integration', hotfix, { promote_deployment: true, automatic_deploys_enabled: true });
    const ours = await h.stack.merge('follows-main');
    const { workflowId } = await h.startCi('follows-main', ours);
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments[0]).toMatchObject({ state: 'DEPLOYED' });
    expect(result.environments[0]!.approval).toBeUndefined();
    expect(await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('follows-main', 'integration'))).toContain(`image_tag: ${ours}`);
  });

  it('hands the lane on when the holder lets go while the lane is busy telling the queue why they wait', async () => {
    const sha = 'a'.repeat(40);
    const acquire = (app: string, pipelineId: string) =>
      h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
        workflowId: laneWorkflowId(h.taskQueue, app, 'staging'),
        taskQueue: h.taskQueue,
        args: [{ app, environment: 'staging' }],
        signal: acquireLaneSignal,
        signalArgs: [{ pipelineId, sha, trigger: 'ci' as const }],
      });
    for (let round = 1; round <= 3; round++) {
      // Any running workflow takes the lane's signals; two idle lanes stand in for the pipelines that get the lane.
      const first = await acquire(`stand-in-a${round}`, 'nobody');
      const second = await acquire(`stand-in-b${round}`, 'nobody');
      const lane = await acquire(`contested${round}`, first.workflowId);
      await waitFor(async () => (await lane.query(laneStateQuery)).holder?.pipelineId === first.workflowId, { description: 'the first to hold the lane' });
      const token = await grantToken(lane, first.workflowId);
      // Queued: pipelines that have gone (each costs the lane a round trip to find out), then the second.
      for (const pipelineId of [1, 2, 3, 4, 5].map((n) => `deploy-gone-${round}-${n}`)) await lane.signal(acquireLaneSignal, { pipelineId, sha, trigger: 'ci' });
      await lane.signal(acquireLaneSignal, { pipelineId: second.workflowId, sha, trigger: 'ci' });
      await lane.signal(releaseLaneSignal, { pipelineId: first.workflowId, token });
      const handedOn = await waitFor(
        async () => {
          const state = await lane.query(laneStateQuery);
          return state.holder?.pipelineId === second.workflowId ? state : undefined;
        },
        { timeoutMs: 20_000, description: `round ${round}: the lane to pass to the second pipeline` },
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}; lane state: ${JSON.stringify(await lane.query(laneStateQuery))}`);
      });
      expect(handedOn.queue).toEqual([]);
    }
  });

  it('tells a queue of n pipelines why they wait in n signals, and checks the holder once: the next in line hears who holds the lane', async () => {
    const sha = 'd'.repeat(40);
    const ids = await standInPipelines('stand-in-queue', ['holder', 'q1', 'q2', 'q3', 'q4', 'q5'], sha);
    const lane = await h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
      workflowId: laneWorkflowId(h.taskQueue, 'queued-app', 'staging'),
      taskQueue: h.taskQueue,
      args: [{ app: 'queued-app', environment: 'staging' }],
      signal: acquireLaneSignal,
      signalArgs: [{ pipelineId: ids[0]!, sha, trigger: 'ci' as const }],
    });
    await waitFor(async () => (await lane.query(laneStateQuery)).holder?.pipelineId === ids[0], { timeoutMs: 20_000, description: 'the first to hold the lane' });
    for (const pipelineId of ids.slice(1)) await lane.signal(acquireLaneSignal, { pipelineId, sha, trigger: 'ci' });
    const deploying = (holder: string) => `${holder} is deploying queued-app to staging`;
    // Each holder hands on to the next in line once that one has heard who it waits for.
    for (const [i, holder] of ids.slice(0, -1).entries()) {
      const next = ids[i + 1]!;
      await waitFor(async () => (await lane.query(laneStateQuery)).holder?.pipelineId === holder, { timeoutMs: 20_000, description: `${holder} to hold the lane` });
      await waitFor(async () => (await waitingReasons(lane)).get(next)?.includes(deploying(holder)), { timeoutMs: 20_000, description: `${next} to hear that ${holder} deploys` });
      await lane.signal(releaseLaneSignal, { pipelineId: holder, token: await grantToken(lane, holder) });
    }
    await waitFor(async () => (await lane.query(laneStateQuery)).holder?.pipelineId === ids.at(-1), { timeoutMs: 20_000, description: 'the last to hold the lane' });

    const told = await waitingReasons(lane);
    const queued = ids.slice(1);
    expect([...told.keys()].sort()).toEqual([...queued].sort());
    // Each heard once, when next in line, who it waited for; behind others it showed what it asked for, the lane.
    for (const [i, pipelineId] of queued.entries()) expect(told.get(pipelineId)).toEqual([deploying(ids[i]!)]);
    // The holder was checked when the first pipeline queued behind it, not for every one that followed.
    expect((await signalsSent(lane, 'laneHolderCheck')).get(ids[0]!)).toHaveLength(1);
  });

  it('a pipeline held back by a hold, once it is cleared, hears that it is queued behind others', async () => {
    const sha = 'e'.repeat(40);
    const [holder, first, second] = (await standInPipelines('stand-in-held', ['holder', 'q1', 'q2'], sha)) as [string, string, string];
    const lane = await h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
      workflowId: laneWorkflowId(h.taskQueue, 'held-app', 'staging'),
      taskQueue: h.taskQueue,
      args: [{ app: 'held-app', environment: 'staging' }],
      signal: acquireLaneSignal,
      signalArgs: [{ pipelineId: holder, sha, trigger: 'manual' as const }],
    });
    await waitFor(async () => (await lane.query(laneStateQuery)).holder?.pipelineId === holder, { timeoutMs: 20_000, description: 'the manual deploy to hold the lane' });
    await lane.signal(setHoldSignal, { reason: 'manual deploy', setBy: 'alice', setAt: new Date(0).toISOString(), pipelineId: holder });
    for (const pipelineId of [first, second]) await lane.signal(acquireLaneSignal, { pipelineId, sha, trigger: 'ci' });

    const told = async (pipelineId: string) => (await waitingReasons(lane)).get(pipelineId) ?? [];
    const held = /^hold on held-app in staging: manual deploy/;
    await waitFor(async () => (await told(second)).some((reason) => held.test(reason)), { timeoutMs: 20_000, description: 'the second to hear of the hold' });

    await lane.executeUpdate(clearHoldUpdate, { args: [{ by: 'alice' }] });
    await waitFor(async () => (await told(first)).at(-1) === `${holder} is deploying held-app to staging`, { timeoutMs: 20_000, description: 'the first to hear who holds the lane' });
    await waitFor(async () => (await told(second)).at(-1) === 'queued behind other pipelines deploying held-app to staging', {
      timeoutMs: 20_000,
      description: 'the second to hear that the hold no longer stops it',
    });
    expect((await told(second)).filter((reason) => held.test(reason))).toHaveLength(1);
  });

  it('marks every signal of a lane as internal in the signal list Web UI shows', async () => {
    const [laneId] = await standInPipelines('signal-list', ['lane'], 'f'.repeat(40));
    const metadata = await h.client.workflow.getHandle(laneId!).query<WorkflowMetadata>('__temporal_workflow_metadata');
    const signals = metadata.definition.signalDefinitions;
    expect(signals.map((s) => s.name).sort()).toEqual(['acquire', 'awaitingApproval', 'release', 'setHold', 'stoppedAwaiting']);
    for (const signal of signals) expect({ name: signal.name, description: signal.description }).toEqual({ name: signal.name, description: expect.stringMatching(/^Internal: /) });
  });

  describe('signals sent by hand', () => {
    it('a release in the holder’s name without its token changes nothing: the holder keeps the lane, and the next waits for it', async () => {
      const app = 'slow-sync';
      const lane = h.client.workflow.getHandle(laneWorkflowId(h.taskQueue, app, 'integration'));
      const integrationTags = async () => (await tagHistory(h.stack.charts.bareDir, imageTagFile(app, 'integration'))).map((c) => c.tag);
      const warn = jest.spyOn(Runtime.instance().logger, 'warn');
      const first = await h.stack.merge(app);
      const second = await h.stack.merge(app);
      h.stack.argo.reportStaleFor(`${app}-integration`, 120_000);
      try {
        const holder = await h.startCi(app, first);
        await h.waitForStatus(holder.workflowId, (s) => s.environments[0]?.state === 'WAITING_FOR_SYNC', 'the first pipeline to hold the lane and wait for Argo CD');
        const next = await h.startCi(app, second);
        await h.waitForStatus(next.workflowId, (s) => s.environments[0]?.state === 'WAITING_FOR_LANE', 'the second pipeline to queue behind it');

        // What anyone can send with `temporal workflow signal`: the holder's ID, and no token or a made-up one.
        await lane.signal('release', { pipelineId: holder.workflowId });
        await lane.signal('release', { pipelineId: holder.workflowId, token: 'guessed', deployed: { pipelineId: holder.workflowId, sha: second } });
        await waitFor(
          async () => {
            const { events } = await lane.fetchHistory();
            return events!.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'release').length >= 2;
          },
          { timeoutMs: 20_000, description: 'the lane to receive both releases' },
        );
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        const state = await lane.query(laneStateQuery);
        expect(state.holder?.pipelineId).toBe(holder.workflowId);
        expect(state.queue.map((r) => r.pipelineId)).toEqual([next.workflowId]);
        expect((await h.status(next.workflowId)).environments[0]).toMatchObject({ state: 'WAITING_FOR_LANE' });
        expect((await h.status(next.workflowId)).environments[0]!.startedAt).toBeUndefined();
        expect(await integrationTags()).toEqual(['initial', first]);
        const ignored = warn.mock.calls.filter(([message]) => message === 'ignored a release without the token of the lane holder');
        expect(ignored.map(([, meta]) => meta)).toEqual([
          expect.objectContaining({ claimsToBe: holder.workflowId, holder: holder.workflowId }),
          expect.objectContaining({ claimsToBe: holder.workflowId, holder: holder.workflowId }),
        ]);

        h.stack.argo.reportStaleFor(`${app}-integration`, 0);
        const [held, waited] = await Promise.all(
          [holder, next].map(({ workflowId }) => h.waitForStatus(workflowId, (s) => FINAL_STATUSES.includes(s.status), 'the pipeline to end')),
        );
        expect(Date.parse(waited!.environments[0]!.startedAt!)).toBeGreaterThanOrEqual(Date.parse(held!.environments[0]!.finishedAt!));
        expect((await integrationTags()).slice(0, 3)).toEqual(['initial', first, second]);
      } finally {
        h.stack.argo.reportStaleFor(`${app}-integration`, 0);
        warn.mockRestore();
      }
    });

    it('an acquire in the name of a pipeline waiting for approval does not stop the lane: the pipeline hands the grant back', async () => {
      const older = await h.stack.merge('publisher');
      const newer = await h.stack.merge('publisher');
      const waiting = await h.startCi('publisher', older);
      await h.waitForStatus(waiting.workflowId, (s) => s.awaitingApprovalFor === 'staging', 'the older pipeline to wait for staging approval');
      const next = await h.startCi('publisher', newer);
      await h.waitForStatus(next.workflowId, (s) => s.awaitingApprovalFor === 'staging', 'the newer pipeline to wait for staging approval');

      const lane = h.client.workflow.getHandle(laneWorkflowId(h.taskQueue, 'publisher', 'staging'));
      await lane.signal('acquire', { pipelineId: waiting.workflowId, sha: older, trigger: 'ci' });
      // The pipeline got a grant it did not ask for, and sent it straight back.
      await waitFor(
        async () => {
          const { events } = await h.handle(waiting.workflowId).fetchHistory();
          return events!.some((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName === 'release');
        },
        { timeoutMs: 20_000, description: 'the pipeline waiting for approval to hand the grant back' },
      );
      await waitFor(
        async () => {
          const state = await lane.query(laneStateQuery);
          return state.holder === undefined && state.queue.length === 0;
        },
        { timeoutMs: 20_000, description: 'the lane to be free again' },
      );
      expect((await h.status(waiting.workflowId)).awaitingApprovalFor).toBe('staging');

      expect((await h.cli(['approve', next.workflowId, '--environment', 'staging', '--approver', 'alice'])).code).toBe(0);
      const deployed = await h.waitForStatus(next.workflowId, (s) => s.awaitingApprovalFor === 'production', 'the newer pipeline to deploy staging');
      expect(deployed.environments[1]).toMatchObject({ state: 'DEPLOYED' });
      // The news of that deploy still reached the older pipeline.
      expect((await h.handle(waiting.workflowId).result()).status).toBe('SUPERSEDED');
      await h.cli(['reject', next.workflowId, '--environment', 'production', '--approver', 'alice', '--reason', 'end of test']);
      expect((await h.handle(next.workflowId).result()).status).toBe('REJECTED');
    });
  });

  it('offers a grant the run that asked missed (it continued as new) to the pipeline’s current run, and passes over a pipeline with no run open', async () => {
    const sha = '9'.repeat(40);
    const [holder, renewed, gone, later] = (await standInPipelines('stand-in-missed', ['holder', 'renewed', 'gone', 'later'], sha)) as [string, string, string, string];
    const runOf = async (id: string) => (await h.client.workflow.getHandle(id).describe()).runId;
    // Two runs of one ID stand in for a pipeline that continued as new: the run that asked has closed, a newer one runs.
    const renewedFirstRun = await runOf(renewed);
    await h.client.workflow.getHandle(renewed).terminate('stands in for a run that continued as new');
    await standInPipelines('stand-in-missed', ['renewed'], sha);
    expect(await runOf(renewed)).not.toBe(renewedFirstRun);
    const goneRun = await runOf(gone);
    await h.client.workflow.getHandle(gone).terminate('stands in for a pipeline terminated while it waited');

    const lane = await h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
      workflowId: laneWorkflowId(h.taskQueue, 'missed-app', 'staging'),
      taskQueue: h.taskQueue,
      args: [{ app: 'missed-app', environment: 'staging' }],
      signal: acquireLaneSignal,
      signalArgs: [{ pipelineId: holder, sha, trigger: 'ci' as const }],
    });
    await waitFor(async () => (await lane.query(laneStateQuery)).holder?.pipelineId === holder, { timeoutMs: 20_000, description: 'the first to hold the lane' });
    await lane.signal(acquireLaneSignal, { pipelineId: renewed, runId: renewedFirstRun, sha, trigger: 'ci' });
    await lane.signal(acquireLaneSignal, { pipelineId: gone, runId: goneRun, sha, trigger: 'ci' });
    await lane.signal(acquireLaneSignal, { pipelineId: later, sha, trigger: 'ci' });

    await lane.signal(releaseLaneSignal, { pipelineId: holder, token: await grantToken(lane, holder) });
    // The grant went first to the run that asked (closed), then to the current run, which heard it.
    const heard = await waitFor(
      async () => {
        const { events } = await h.client.workflow.getHandle(renewed).fetchHistory();
        const grants = events!.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'laneGranted');
        return grants.length > 0 ? grants : undefined;
      },
      { timeoutMs: 20_000, description: 'the current run of the renewed stand-in to hear of the grant' },
    );
    expect(heard).toHaveLength(1);
    expect((await signalsSent(lane, 'laneGranted')).get(renewed)).toHaveLength(2);
    expect((await lane.query(laneStateQuery)).holder).toEqual({ pipelineId: renewed, sha, trigger: 'ci' });
    expect((await lane.query(laneStateQuery)).queue.map((r) => r.pipelineId)).toEqual([gone, later]);

    await lane.signal(releaseLaneSignal, { pipelineId: renewed, token: await grantToken(lane, renewed) });
    await waitFor(async () => (await lane.query(laneStateQuery)).holder?.pipelineId === later, { timeoutMs: 20_000, description: 'the lane to pass over the terminated stand-in' });
    expect((await lane.query(laneStateQuery)).queue).toEqual([]);
  });

  describe('a holder that ended without handing the lane back (terminated)', () => {
    const sha = 'b'.repeat(40);
    const lane = (app: string, holderCheckIntervalMs?: number) => ({
      workflowId: laneWorkflowId(h.taskQueue, app, 'staging'),
      taskQueue: h.taskQueue,
      args: [{ app, environment: 'staging', ...(holderCheckIntervalMs ? { holderCheckIntervalMs } : {}) }],
    });
    /** Any running workflow takes the lane's signals: idle lanes stand in for pipelines. */
    const standIn = (name: string) =>
      h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, { ...lane(name), signal: acquireLaneSignal, signalArgs: [{ pipelineId: 'nobody', sha, trigger: 'ci' as const }] });
    const holderOf = (handle: WorkflowHandle, expected: string, description: string) =>
      waitFor(
        async () => {
          const state = await handle.query(laneStateQuery);
          return state.holder?.pipelineId === expected ? state : undefined;
        },
        { timeoutMs: 20_000, description },
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}; lane state: ${JSON.stringify(await handle.query(laneStateQuery))}`);
      });

    it('frees the lane when the next pipeline queues behind it', async () => {
      const gone = await standIn('stand-in-terminated');
      const next = await standIn('stand-in-next');
      const contested = await h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
        ...lane('orphaned'),
        signal: acquireLaneSignal,
        signalArgs: [{ pipelineId: gone.workflowId, sha, trigger: 'ci' as const }],
      });
      await holderOf(contested, gone.workflowId, 'the first stand-in to hold the lane');
      await gone.terminate('a person terminated the pipeline in Web UI');

      await contested.signal(acquireLaneSignal, { pipelineId: next.workflowId, sha, trigger: 'ci' });
      const handedOn = await holderOf(contested, next.workflowId, 'the lane to pass over the terminated holder');
      expect(handedOn.queue).toEqual([]);
    });

    it('frees the lane for a new run of the same pipeline ID (a commit deployed again)', async () => {
      const first = await standIn('stand-in-rerun');
      const firstRun = (await first.describe()).runId;
      const contested = await h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
        ...lane('rerun'),
        signal: acquireLaneSignal,
        signalArgs: [{ pipelineId: first.workflowId, runId: firstRun, sha, trigger: 'ci' as const }],
      });
      expect((await holderOf(contested, first.workflowId, 'the first run to hold the lane')).holder?.runId).toBe(firstRun);
      await first.terminate('ended without handing the lane back');

      const again = await standIn('stand-in-rerun');
      const secondRun = (await again.describe()).runId;
      expect(secondRun).not.toBe(firstRun);
      await contested.signal(acquireLaneSignal, { pipelineId: first.workflowId, runId: secondRun, sha, trigger: 'ci' });
      await waitFor(async () => (await contested.query(laneStateQuery)).holder?.runId === secondRun, {
        timeoutMs: 20_000,
        description: 'the new run to hold the lane',
      });
      expect((await contested.query(laneStateQuery)).queue).toEqual([]);
    });

    it('looks again while pipelines wait, and frees the lane when the holder ends later', async () => {
      const holder = await standIn('stand-in-later');
      const waiting = await standIn('stand-in-waiting');
      const contested = await h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
        ...lane('checked-again', 500),
        signal: acquireLaneSignal,
        signalArgs: [{ pipelineId: holder.workflowId, sha, trigger: 'ci' as const }],
      });
      await holderOf(contested, holder.workflowId, 'the first stand-in to hold the lane');
      await contested.signal(acquireLaneSignal, { pipelineId: waiting.workflowId, sha, trigger: 'ci' });
      // The holder runs: the one waiting keeps waiting through several checks.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect((await contested.query(laneStateQuery)).holder?.pipelineId).toBe(holder.workflowId);

      await holder.terminate('ended while another waited');
      await holderOf(contested, waiting.workflowId, 'the lane to notice its holder ended');
    });

    it('checks the holder every interval, however busy the lane is with other signals', async () => {
      const holder = await standIn('stand-in-busy-holder');
      const waiting = await standIn('stand-in-busy-waiting');
      const contested = await h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
        ...lane('busy-checked', 1_000),
        signal: acquireLaneSignal,
        signalArgs: [{ pipelineId: holder.workflowId, sha, trigger: 'ci' as const }],
      });
      await holderOf(contested, holder.workflowId, 'the first stand-in to hold the lane');
      await contested.signal(acquireLaneSignal, { pipelineId: waiting.workflowId, sha, trigger: 'ci' });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await holder.terminate('ended while the lane was busy');
      // A signal every 200 ms, more often than the interval: a check that waited for a quiet interval never came.
      let busy = true;
      const chatter = (async () => {
        for (let i = 0; busy && i < 100; i++) {
          await contested.signal(awaitingApprovalSignal, { pipelineId: `chatter-${i}`, sha, trigger: 'ci' });
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      })();
      try {
        await holderOf(contested, waiting.workflowId, 'the lane to notice, amid the chatter, that its holder ended');
      } finally {
        busy = false;
        await chatter;
      }
    });
  });

  it('continues as new once its history passes 150 events, keeping what it knows', async () => {
    const sha = 'c'.repeat(40);
    const lane = await h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
      workflowId: laneWorkflowId(h.taskQueue, 'busy-app', 'staging'),
      taskQueue: h.taskQueue,
      args: [{ app: 'busy-app', environment: 'staging' }],
      signal: awaitingApprovalSignal,
      signalArgs: [{ pipelineId: 'waiting-0', sha, trigger: 'ci' as const }],
    });
    const firstRun = (await lane.describe()).runId;
    // Pipelines waiting for approval here, one signal each: every one lengthens the lane's history.
    for (let i = 1; i < 600; i++) await lane.signal(awaitingApprovalSignal, { pipelineId: `waiting-${i}`, sha, trigger: 'ci' });
    const continued = await waitFor(
      async () => {
        const description = await h.client.workflow.getHandle(lane.workflowId).describe();
        return description.runId !== firstRun && description.status.name === 'RUNNING' ? description : undefined;
      },
      { timeoutMs: 30_000, description: 'the lane to continue as new' },
    );
    const { events } = await h.client.workflow.getHandle(lane.workflowId, firstRun).fetchHistory();
    expect(events!.length).toBeGreaterThan(150);
    expect(events!.length).toBeLessThan(350);
    expect(events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    const state = await waitFor(
      async () => {
        const now = await h.client.workflow.getHandle(lane.workflowId, continued.runId).query(laneStateQuery);
        return now.awaitingApproval.length === 600 ? now : undefined;
      },
      { timeoutMs: 30_000, description: 'every waiting pipeline in the new run' },
    );
    expect(new Set(state.awaitingApproval.map((r) => r.pipelineId)).size).toBe(600);
  });
});

describe('lanes terminated by hand', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({ apps: { collections: {}, manuals: {} }, laneRecheckInterval: '1s' });
  });
  afterAll(async () => h?.close());

  it('a pipeline queued in a lane that was terminated asks again, starts it anew and deploys', async () => {
    const app = 'collections';
    const laneId = laneWorkflowId(h.taskQueue, app, 'staging');
    const held = await h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
      workflowId: laneId,
      taskQueue: h.taskQueue,
      args: [{ app, environment: 'staging' }],
      signal: setHoldSignal,
      signalArgs: [{ reason: 'someone is looking', setBy: 'alice', setAt: new Date().toISOString() }],
    });
    const sha = await h.stack.merge(app);
    const { workflowId } = await h.startCi(app, sha);
    await h.waitForStatus(workflowId, (s) => s.environments[1]?.state === 'WAITING_FOR_LANE' && /^hold on /.test(s.environments[1]?.waitingFor ?? ''), 'the pipeline to queue behind the hold');
    const firstRun = (await held.describe()).runId;
    await held.terminate('a person terminated the lane in Web UI');

    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'DEPLOYED', 'DEPLOYED']);
    const restarted = await h.client.workflow.getHandle(laneId).describe();
    expect(restarted.runId).not.toBe(firstRun);
  });

  it('a pipeline whose lane was terminated while it deployed still finishes', async () => {
    const app = 'manuals';
    const name = `${app}-integration`;
    const sha = await h.stack.merge(app);
    h.stack.argo.reportStaleFor(name, 60_000);
    try {
      const { workflowId } = await h.startCi(app, sha);
      await h.waitForStatus(workflowId, (s) => s.environments[0]?.state === 'WAITING_FOR_SYNC', 'the pipeline to hold the lane and wait for Argo CD');
      await h.client.workflow.getHandle(laneWorkflowId(h.taskQueue, app, 'integration')).terminate('terminated under a deploy');
      h.stack.argo.reportStaleFor(name, 0);
      const result = await h.handle(workflowId).result();
      expect(result.status).toBe('SUCCEEDED');
    } finally {
      h.stack.argo.reportStaleFor(name, 0);
    }
  });
});

describe('a long wait for a lane', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    // A pipeline asks again every 100 ms and a run holds at most 300 events: a month-long wait for a lane, in a minute.
    // In order: the test follows each pipeline's place in the queue, which newest-first would reorder.
    h = await startHarness({
      apps: { 'long-lane': { queue: 'in-order', environments: { integration: { continuousDeployment: true }, staging: { continuousDeployment: false }, production: { continuousDeployment: false } } } },
      laneRecheckInterval: '100ms',
      historyLimit: 300,
    });
  });
  afterAll(async () => h?.close());

  /** Every run of the pipeline, oldest first, with its history's length. */
  async function runsOf(workflowId: string): Promise<{ runId: string; events: number }[]> {
    const runs: { runId: string; events: number; startedAt: number }[] = [];
    for await (const run of h.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
      const events = (await h.client.workflow.getHandle(workflowId, run.runId).fetchHistory()).events ?? [];
      runs.push({ runId: run.runId, events: events.length, startedAt: run.startTime.getTime() });
    }
    return runs.sort((a, b) => a.startedAt - b.startedAt).map(({ runId, events }) => ({ runId, events }));
  }

  it('continues as new while it waits, keeping its ID and its place ahead of pipelines that queued later, and deploys once the holder is done', async () => {
    const app = 'long-lane';
    const argoApp = `${app}-integration`;
    const lane = h.client.workflow.getHandle(laneWorkflowId(h.taskQueue, app, 'integration'));
    const [first, second, third] = [await h.stack.merge(app), await h.stack.merge(app), await h.stack.merge(app)];
    h.stack.argo.reportStaleFor(argoApp, 300_000);
    try {
      const holder = await h.startCi(app, first!);
      await h.waitForStatus(holder.workflowId, (s) => s.environments[0]?.state === 'WAITING_FOR_SYNC', 'the first pipeline to hold the lane and wait for Argo CD');
      const waiting = await h.startCi(app, second!);
      await waitFor(async () => (await lane.query(laneStateQuery)).queue.some((r) => r.pipelineId === waiting.workflowId), { description: 'the second pipeline to queue' });
      const later = await h.startCi(app, third!);
      await waitFor(async () => (await lane.query(laneStateQuery)).queue.length === 2, { description: 'the third pipeline to queue behind the second' });

      const runs = await waitFor(
        async () => {
          const found = await runsOf(waiting.workflowId);
          return found.length >= 3 ? found : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 2_000, description: 'the waiting pipeline to continue as new twice' },
      );
      for (const run of runs) expect(run.events).toBeLessThan(300 + 40);
      const { runId: currentRun } = await h.handle(waiting.workflowId).describe();
      expect(runs.map((r) => r.runId)).toContain(currentRun);
      const status = await h.status(waiting.workflowId);
      expect(status).toMatchObject({ workflowId: waiting.workflowId, status: 'WAITING_FOR_LANE', sha: second });
      // Still ahead of the one that queued after it, though each asked from runs the lane had not seen.
      const queued = (await lane.query(laneStateQuery)).queue;
      expect(queued.map((r) => r.pipelineId)).toEqual([waiting.workflowId, later.workflowId]);
      expect(await tagHistory(h.stack.charts.bareDir, imageTagFile(app, 'integration')).then((t) => t.map((c) => c.tag))).toEqual(['initial', first]);

      h.stack.argo.reportStaleFor(argoApp, 0);
      const ended = await Promise.all(
        [holder, waiting, later].map(({ workflowId }) => h.waitForStatus(workflowId, (s) => s.awaitingApprovalFor === 'staging', 'the pipeline to deploy integration', 120_000)),
      );
      const spans = ended.map((s) => [Date.parse(s.environments[0]!.startedAt!), Date.parse(s.environments[0]!.finishedAt!)] as const);
      expect(spans[1]![0]).toBeGreaterThanOrEqual(spans[0]![1]);
      expect(spans[2]![0]).toBeGreaterThanOrEqual(spans[1]![1]);
      expect((await tagHistory(h.stack.charts.bareDir, imageTagFile(app, 'integration'))).map((c) => c.tag)).toEqual(['initial', first, second, third]);
      expect(ended[1]!.environments[0]).toMatchObject({ state: 'DEPLOYED' });
      for (const { workflowId } of [holder, waiting, later]) {
        await h.cli(['reject', workflowId, '--environment', 'staging', '--approver', 'alice', '--reason', 'end of test']);
      }
    } finally {
      h.stack.argo.reportStaleFor(argoApp, 0);
    }
  }, 400_000);
});
