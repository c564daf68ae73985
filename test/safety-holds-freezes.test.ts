import { defaultPayloadConverter } from '@temporalio/common';
import type { ThawProgress } from '../activities';
import { msUntilWindowOpens } from '../common/deploy-windows';
import { shortSha } from '../common/names';
import { readFileAt } from './support/charts-repo';
import { waitFor } from './support/env';
import { failureOf, startHarness, type PipelineHarness } from './support/pipeline';
import { holdsOf, imageTagFile, syncsOf, tagHistory, windowClosingIn, windowOpeningIn } from './support/safety';
import { DeployStatusAttribute, LANE_WORKFLOW_TYPE, laneWorkflowId, setHoldSignal } from '../workflows/definitions';


const versions = (h: PipelineHarness, app: string, environment: string) =>
  h.stack.release.deployments.filter((d) => d.repo === `alphagov/${app}` && d.environment === environment).map((d) => d.version);

describe('rollback with a hold, and manual deploys holding automatic ones', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({ apps: { frontend: {}, collections: {} } });
  });
  afterAll(async () => h?.close());

  it('rolls staging back after a failed smoke test, holds it, and lets the next pipeline through only once the hold is cleared', async () => {
    const bad = await h.stack.merge('frontend');
    h.stack.endpoints.failChecks('frontend', 'staging', { status: 503 });
    let first: string;
    try {
      ({ workflowId: first } = await h.startCi('frontend', bad));
      const message = await failureOf(h, first);
      expect(message).toMatch(/^smoke test failed for frontend [0-9a-f]{40} in staging: GET \S+\/frontend\/staging\/healthcheck returned 503, expected 200.* \(after 2 attempts\); rolled staging back to initial and put a hold on automatic deploys there$/);
    } finally {
      h.stack.endpoints.restore('frontend', 'staging');
    }
    const rolledBack = await h.status(first);
    expect(rolledBack.status).toBe('ROLLED_BACK');
    expect(rolledBack.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'ROLLED_BACK', 'PENDING']);
    expect((await h.handle(first).describe()).typedSearchAttributes.get(DeployStatusAttribute)).toBe('ROLLED_BACK');

    // The charts repo: our deploy, then a revert to the old tag; the file keeps its other keys.
    const staging = await tagHistory(h.stack.charts.bareDir, imageTagFile('frontend', 'staging'));
    expect(staging.map((c) => c.tag)).toEqual(['initial', bad, 'initial']);
    expect(staging[1]!.subject).toBe(`Deploy frontend ${bad} to staging`);
    expect(staging[2]!.subject).toMatch(/^Roll back /);
    expect(staging[2]!.subject).toBe(`Roll back frontend to initial in staging: ${bad} failed`);
    const stagingFile = await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('frontend', 'staging'));
    expect(stagingFile).toMatch(/^# Managed by the deploy pipeline\nimage_tag: initial\npromote_deployment: true\nautomatic_deploys_enabled: true\n$/);
    // Argo CD went back to the old tag, and it is running Healthy.
    expect(h.stack.argo.currentTag('frontend', 'staging')).toBe('initial');
    expect(syncsOf(h.stack.argo, 'frontend-staging').map((s) => [s.tag, s.phase, s.health])).toEqual([
      [bad, 'Succeeded', 'Healthy'],
      ['initial', 'Succeeded', 'Healthy'],
    ]);
    expect(versions(h, 'frontend', 'staging')).toEqual([bad, 'initial']);
    // Production never saw the bad commit.
    expect((await tagHistory(h.stack.charts.bareDir, imageTagFile('frontend', 'production'))).map((c) => c.tag)).toEqual(['initial']);

    // The hold, as `deploy hold list` shows it.
    const [hold] = await holdsOf(h, 'frontend', (holds) => holds.length > 0);
    expect(hold).toMatchObject({ app: 'frontend', environment: 'staging', setBy: 'deploy pipeline', pipelineId: first });
    expect(hold!.reason).toMatch(new RegExp(`^rolled back from ${bad}: smoke test failed for frontend ${bad} in staging: `));
    const human = await h.cli(['hold', 'list', '--app', 'frontend']);
    expect(human.code).toBe(0);
    expect(human.out).toEqual([`frontend staging: ${hold!.reason} (set by deploy pipeline at ${hold!.setAt})`]);

    // The next automatic pipeline deploys integration, then waits for the lane, naming the hold.
    const good = await h.stack.merge('frontend');
    const { workflowId: second } = await h.startCi('frontend', good);
    const waiting = await h.waitForStatus(
      second,
      (s) => s.environments[1]?.state === 'WAITING_FOR_LANE' && /^hold on /.test(s.environments[1]?.waitingFor ?? ''),
      'the next pipeline to wait on the staging hold',
    );
    expect(waiting.status).toBe('WAITING_FOR_LANE');
    expect(waiting.currentEnvironment).toBe('staging');
    expect(waiting.environments[0]!.state).toBe('DEPLOYED');
    expect(waiting.environments[1]!.waitingFor).toBe(
      `hold on frontend in staging: ${hold!.reason} (set by deploy pipeline at ${hold!.setAt}); clear it with "deploy hold clear"`,
    );
    expect(await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('frontend', 'staging'))).toBe(stagingFile);
    expect(versions(h, 'frontend', 'staging')).toEqual([bad, 'initial']);

    const cleared = await h.cli(['hold', 'clear', '--app', 'frontend', '--environment', 'staging', '--approver', 'alice']);
    expect(cleared).toMatchObject({ code: 0, out: [`cleared the hold on frontend in staging: ${hold!.reason}`] });
    const result = await h.handle(second).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'DEPLOYED', 'DEPLOYED']);
    expect(h.stack.argo.currentTag('frontend', 'staging')).toBe(good);
    expect(h.stack.argo.currentTag('frontend', 'production')).toBe(good);
    expect(await holdsOf(h, 'frontend', (holds) => holds.length === 0)).toEqual([]);
    expect((await h.cli(['hold', 'list', '--app', 'frontend'])).out).toEqual(['no holds']);
  });

  it('puts a hold on the environment of a manual deploy; automatic deploys wait there until it is cleared', async () => {
    const hotfix = await h.stack.merge('collections');
    const next = await h.stack.merge('collections');
    const manual = await h.cli(['start', '--app', 'collections', '--ref', hotfix, '--environment', 'production', '--requested-by', 'alice', '--wait', '--json']);
    expect(manual.code).toBe(0);
    expect(JSON.parse(manual.out.join('\n')).result).toMatchObject({ status: 'SUCCEEDED', trigger: 'manual' });

    const [hold] = await holdsOf(h, 'collections', (holds) => holds.length > 0);
    expect(hold).toMatchObject({
      app: 'collections',
      environment: 'production',
      reason: `manual deploy of ${hotfix} (${shortSha(hotfix)})`,
      setBy: 'alice',
      pipelineId: `deploy-collections-${hotfix}-production-manual`,
    });

    const { workflowId } = await h.startCi('collections', next);
    const waiting = await h.waitForStatus(
      workflowId,
      (s) => s.environments[2]?.state === 'WAITING_FOR_LANE' && /^hold on /.test(s.environments[2]?.waitingFor ?? ''),
      'the automatic pipeline to wait on the production hold',
    );
    expect(waiting.environments.slice(0, 2).map((e) => e.state)).toEqual(['DEPLOYED', 'DEPLOYED']);
    expect(waiting.environments[2]!.waitingFor).toBe(
      `hold on collections in production: manual deploy of ${hotfix} (${shortSha(hotfix)}) (set by alice at ${hold!.setAt}); clear it with "deploy hold clear"`,
    );
    expect(await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('collections', 'production'))).toContain(`image_tag: ${hotfix}`);

    expect((await h.cli(['hold', 'clear', '--app', 'collections', '--environment', 'production', '--approver', 'bob'])).code).toBe(0);
    expect((await h.handle(workflowId).result()).status).toBe('SUCCEEDED');
    expect(h.stack.argo.currentTag('collections', 'production')).toBe(next);
    expect(versions(h, 'collections', 'production')).toEqual([hotfix, next]);

    const again = await h.cli(['hold', 'clear', '--app', 'collections', '--environment', 'production', '--approver', 'bob']);
    expect(again.code).toBe(3);
    expect(again.err).toEqual(['deploy: refused: there is no hold on collections in production']);
  });
});

describe('a freeze in the charts file', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({ apps: { 'search-api': {} }, freezeRecheckInterval: '1s' });
  });
  afterAll(async () => h?.close());

  it('stops automatic deploys (FROZEN, with the reason) but not manual ones; lifting it lets the automatic one through', async () => {
    const hotfix = await h.stack.merge('search-api');
    const sha = await h.stack.merge('search-api');
    const file = imageTagFile('search-api', 'staging');
    await h.stack.charts.writeImageTag('search-api', 'staging', 'initial', { promote_deployment: true, automatic_deploys_enabled: false });

    const { workflowId } = await h.startCi('search-api', sha);
    const reason = `automatic deploys to staging are turned off (automatic_deploys_enabled: false in ${file})`;
    const frozen = await h.waitForStatus(workflowId, (s) => s.environments[1]?.state === 'FROZEN', 'the pipeline to stop at the staging freeze');
    expect(frozen.status).toBe('FROZEN');
    // What the freeze holds back is found by its search attribute, as in `deploy list --status FROZEN` or a Web UI filter.
    const listed = await waitFor(
      async () => {
        const cli = await h.cli(['list', '--app', 'search-api', '--status', 'FROZEN', '--json']);
        return (JSON.parse(cli.out.join('\n')) as { workflowId: string }[]).find((row) => row.workflowId === workflowId);
      },
      { timeoutMs: 15_000, description: 'the frozen pipeline in `deploy list --status FROZEN`' },
    );
    expect(listed.workflowId).toBe(workflowId);
    expect(frozen.environments[0]!.state).toBe('DEPLOYED');
    expect(frozen.environments[1]!.waitingFor).toBe(reason);
    expect(frozen.environments[2]!.state).toBe('PENDING');
    expect((await tagHistory(h.stack.charts.bareDir, file)).map((c) => [c.tag, c.automatic])).toEqual([
      ['initial', true],
      ['initial', false],
    ]);
    expect(versions(h, 'search-api', 'staging')).toEqual([]);

    // A person deploys by hand into the frozen environment; the freeze stays in the file.
    const manual = await h.cli(['start', '--app', 'search-api', '--ref', hotfix, '--environment', 'staging', '--requested-by', 'alice', '--wait']);
    expect(manual.code).toBe(0);
    expect(versions(h, 'search-api', 'staging')).toEqual([hotfix]);
    expect((await tagHistory(h.stack.charts.bareDir, file)).at(-1)).toMatchObject({ tag: hotfix, automatic: false });
    await holdsOf(h, 'search-api', (holds) => holds.some((hold) => hold.environment === 'staging'));
    expect((await h.cli(['hold', 'clear', '--app', 'search-api', '--environment', 'staging', '--approver', 'alice'])).code).toBe(0);

    // Still frozen: it keeps looking, and keeps stopping.
    const stillFrozen = await h.waitForStatus(workflowId, (s) => s.environments[1]?.state === 'FROZEN', 'the pipeline to stop at the freeze again');
    expect(stillFrozen.environments[1]!.waitingFor).toBe(reason);
    expect(versions(h, 'search-api', 'staging')).toEqual([hotfix]);

    await h.stack.charts.writeImageTag('search-api', 'staging', hotfix, { promote_deployment: true, automatic_deploys_enabled: true });
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'DEPLOYED', 'DEPLOYED']);
    expect((await tagHistory(h.stack.charts.bareDir, file)).map((c) => [c.tag, c.automatic])).toEqual([
      ['initial', true],
      ['initial', false],
      [hotfix, false],
      [hotfix, true],
      [sha, true],
    ]);
    expect(versions(h, 'search-api', 'staging')).toEqual([hotfix, sha]);
    expect(h.stack.argo.currentTag('search-api', 'staging')).toBe(sha);
  });
});

describe('windowOpeningIn (the windows these tests use)', () => {
  it.each([
    ['within a minute', '2026-03-10T10:15:20.400Z', '10:15:24', '10:25:24', '2026-03-10T10:15:24.000Z'],
    ['across a minute', '2026-03-10T10:15:57.400Z', '10:16:01', '10:26:01', '2026-03-10T10:16:01.000Z'],
    ['across an hour', '2026-03-10T10:59:58.000Z', '11:00:01', '11:10:01', '2026-03-10T11:00:01.000Z'],
    ['near the end of a day', '2026-03-10T23:50:00.000Z', '23:50:03', '23:59:59', '2026-03-10T23:50:03.000Z'],
    ['onto the last second of a day', '2026-03-10T23:59:55.200Z', '00:00:00', '00:10:00', '2026-03-11T00:00:00.000Z'],
    ['across midnight', '2026-03-10T23:59:58.500Z', '00:00:02', '00:10:02', '2026-03-11T00:00:02.000Z'],
  ])('opens a few seconds later %s', (_, now, from, to, opensAt) => {
    const nowMs = Date.parse(now);
    const opening = windowOpeningIn(nowMs, 3000);
    expect(opening.window).toMatchObject({ from, to, timezone: 'UTC' });
    expect(opening.opensAt.toISOString()).toBe(opensAt);
    // The catalogue's own arithmetic agrees: closed now, open from that instant.
    expect(msUntilWindowOpens([opening.window], nowMs)).toBe(Date.parse(opensAt) - nowMs);
    expect(msUntilWindowOpens([opening.window], Date.parse(opensAt))).toBe(0);
    expect(msUntilWindowOpens([opening.window], Date.parse(opensAt) - 1)).toBe(1);
  });
});

describe('deploy windows', () => {
  let h: PipelineHarness;
  let opening: ReturnType<typeof windowOpeningIn>;
  let later: ReturnType<typeof windowOpeningIn>;
  beforeAll(async () => {
    // A window that opens a few seconds after the worker starts (starting it takes a few seconds on a busy
    // machine, and the pipeline must reach the window first), and one that stays shut during the test.
    opening = windowOpeningIn(Date.now(), 12_000);
    later = windowOpeningIn(Date.now(), 3 * 3_600_000);
    h = await startHarness({
      apps: {
        maslow: { environments: { integration: { deployWindows: [opening.window] }, staging: {}, production: {} } },
        'content-tagger': { environments: { integration: { deployWindows: [later.window] }, staging: {}, production: {} } },
      },
    });
  });
  afterAll(async () => h?.close());

  it('keeps an automatic deploy OUTSIDE_WINDOW until the window opens, then deploys', async () => {
    const sha = await h.stack.merge('maslow');
    const { workflowId } = await h.startCi('maslow', sha);
    const waiting = await h.waitForStatus(
      workflowId,
      (s) => s.environments[0]?.state === 'OUTSIDE_WINDOW',
      `the pipeline to wait for the deploy window (it must get there before ${opening.opensAt.toISOString()})`,
      Math.max(opening.opensAt.getTime() - Date.now(), 1000),
    );
    expect(waiting.status).toBe('OUTSIDE_WINDOW');
    expect(waiting.environments[0]!.waitingFor).toBe(`the deploy window for integration opens at ${opening.opensAt.toISOString()}`);
    expect(Date.now()).toBeLessThan(opening.opensAt.getTime());
    expect(versions(h, 'maslow', 'integration')).toEqual([]);

    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    // Nothing happened in integration before the window opened.
    const integration = result.environments[0]!;
    expect(Date.parse(integration.startedAt!)).toBeGreaterThanOrEqual(opening.opensAt.getTime());
    const record = h.stack.release.deployments.find((d) => d.repo === 'alphagov/maslow' && d.environment === 'integration')!;
    expect(record.createdAt.getTime()).toBeGreaterThanOrEqual(opening.opensAt.getTime());
    expect(syncsOf(h.stack.argo, 'maslow-integration')[0]!.startedAt.getTime()).toBeGreaterThanOrEqual(opening.opensAt.getTime());
  });

  it('lets a manual deploy through a closed window while the automatic one keeps waiting', async () => {
    const sha = await h.stack.merge('content-tagger');
    const { workflowId } = await h.startCi('content-tagger', sha);
    const reason = `the deploy window for integration opens at ${later.opensAt.toISOString()}`;
    await h.waitForStatus(workflowId, (s) => s.environments[0]?.state === 'OUTSIDE_WINDOW', 'the pipeline to wait for the deploy window');

    const manual = await h.cli(['start', '--app', 'content-tagger', '--ref', sha, '--environment', 'integration', '--wait', '--json']);
    expect(manual.code).toBe(0);
    const manualResult = JSON.parse(manual.out.join('\n')).result;
    expect(manualResult).toMatchObject({ status: 'SUCCEEDED', environments: [{ environment: 'integration', state: 'DEPLOYED' }] });
    expect(manualResult.environments[0].waitingFor).toBeUndefined();
    expect(versions(h, 'content-tagger', 'integration')).toEqual([sha]);

    const automatic = await h.status(workflowId);
    expect(automatic.environments[0]).toMatchObject({ state: 'OUTSIDE_WINDOW', waitingFor: reason });
    expect((await h.cli(['cancel', workflowId])).code).toBe(0);
    expect((await h.waitForStatus(workflowId, (s) => s.status === 'CANCELLED', 'the waiting pipeline to be cancelled')).environments[0]!.state).toBe('CANCELLED');
  });
});

describe('a deploy window that closes while the pipeline waits for the lane', () => {
  let h: PipelineHarness;
  let closing: ReturnType<typeof windowClosingIn>;
  beforeAll(async () => {
    // Open now, shut in 40 s: long enough for the pipeline to queue for its lane behind a hold.
    closing = windowClosingIn(Date.now(), 40_000);
    h = await startHarness({ apps: { 'short-window': { environments: { integration: { deployWindows: [closing.window] }, staging: {}, production: {} } } } });
  });
  afterAll(async () => h?.close());

  it('is looked at again once the lane is held: the pipeline goes back to wait for the next window, deploying nothing', async () => {
    const app = 'short-window';
    await h.client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
      workflowId: laneWorkflowId(h.taskQueue, app, 'integration'),
      taskQueue: h.taskQueue,
      args: [{ app, environment: 'integration' }],
      signal: setHoldSignal,
      signalArgs: [{ reason: 'a person is looking at integration', setBy: 'alice', setAt: new Date().toISOString() }],
    });
    const sha = await h.stack.merge(app);
    const { workflowId } = await h.startCi(app, sha);
    const queued = await h.waitForStatus(workflowId, (s) => s.environments[0]?.state === 'WAITING_FOR_LANE', 'the pipeline to queue behind the hold');
    expect(Date.now()).toBeLessThan(closing.closesAt.getTime());
    expect(queued.status).toBe('WAITING_FOR_LANE');

    await new Promise((resolve) => setTimeout(resolve, closing.closesAt.getTime() - Date.now() + 1000));
    expect((await h.cli(['hold', 'clear', '--app', app, '--environment', 'integration', '--approver', 'alice'])).code).toBe(0);
    const outside = await h.waitForStatus(workflowId, (s) => s.environments[0]?.state === 'OUTSIDE_WINDOW', 'the pipeline to go back and wait for the window');
    expect(outside.status).toBe('OUTSIDE_WINDOW');
    expect(outside.environments[0]!.waitingFor).toMatch(/^the deploy window for integration opens at \d{4}-/);
    expect(versions(h, app, 'integration')).toEqual([]);
    await h.handle(workflowId).cancel();
  });
});

describe('a freeze that lasts', () => {
  let h: PipelineHarness;
  const THAW_WAIT = 'waitForThaw';
  const RECHECKS = 5_000;
  beforeAll(async () => {
    // A look every millisecond: a month of looks at the default minute is 43,200; 5,000 of them take a minute here.
    // Heartbeats reach the server every 80% of the heartbeat timeout (here 5 s), so the test sees the count move.
    h = await startHarness({ apps: { 'long-freeze': {}, 'cancelled-in-freeze': {} }, freezeRecheckInterval: '1ms', stepRetry: { heartbeatTimeout: '5s' } });
  });
  afterAll(async () => h?.close());

  /** How many looks at the file the pending wait has reported in its last heartbeat to reach the server. */
  async function rechecksSoFar(workflowId: string): Promise<number | undefined> {
    const { raw } = await h.handle(workflowId).describe();
    const waiting = raw.pendingActivities?.find((a) => a.activityType?.name === THAW_WAIT);
    const [details] = waiting?.heartbeatDetails?.payloads ?? [];
    return details ? defaultPayloadConverter.fromPayload<ThawProgress>(details).rechecks : undefined;
  }

  it(`waits in one run with a short history through ${RECHECKS} looks, keeping its ID and state, then deploys once the freeze lifts`, async () => {
    const app = 'long-freeze';
    await h.stack.charts.writeImageTag(app, 'staging', 'initial', { promote_deployment: true, automatic_deploys_enabled: false });
    const sha = await h.stack.merge(app);
    const { workflowId, runId } = await h.startCi(app, sha);
    await h.waitForStatus(workflowId, (s) => s.environments[1]?.state === 'FROZEN', 'the pipeline to stop at the staging freeze');

    const looked = await waitFor(
      async () => {
        const rechecks = await rechecksSoFar(workflowId);
        return rechecks !== undefined && rechecks >= RECHECKS ? rechecks : undefined;
      },
      // About a minute on a quiet 2-core machine (a look is one `git ls-remote`); room for one shared with other work.
      { timeoutMs: 420_000, intervalMs: 1_000, description: `the frozen pipeline to look at the file ${RECHECKS} times` },
    );
    expect(looked).toBeGreaterThanOrEqual(RECHECKS);
    const waitingHistory = (await h.handle(workflowId).fetchHistory()).events ?? [];
    expect(waitingHistory.length).toBeLessThan(150);
    const waiting = await h.status(workflowId);
    expect(waiting).toMatchObject({ workflowId, status: 'FROZEN', sha });
    expect(waiting.environments[0]!.state).toBe('DEPLOYED');
    expect(waiting.environments[1]!.waitingFor).toBe(`automatic deploys to staging are turned off (automatic_deploys_enabled: false in ${imageTagFile(app, 'staging')})`);
    const described = await h.handle(workflowId).describe();
    expect(described.runId).toBe(runId);
    expect(described.typedSearchAttributes.get(DeployStatusAttribute)).toBe('FROZEN');
    expect(versions(h, app, 'staging')).toEqual([]);

    await h.stack.charts.writeImageTag(app, 'staging', 'initial', { promote_deployment: true, automatic_deploys_enabled: true });
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'DEPLOYED', 'DEPLOYED']);
    expect(versions(h, app, 'staging')).toEqual([sha]);

    // One run from start to end: every look was inside the one wait, whose result counts them.
    const runs: string[] = [];
    for await (const run of h.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs.push(run.runId);
    expect(runs).toEqual([runId]);
    const events = (await h.handle(workflowId).fetchHistory()).events ?? [];
    expect(events.some((e) => e.workflowExecutionContinuedAsNewEventAttributes)).toBe(false);
    const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === THAW_WAIT);
    expect(scheduled).toHaveLength(1);
    const completed = events.find((e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === scheduled[0]!.eventId!.toString());
    const [outcome] = completed?.activityTaskCompletedEventAttributes?.result?.payloads ?? [];
    expect(defaultPayloadConverter.fromPayload<{ rechecks: number }>(outcome!).rechecks).toBeGreaterThan(looked);
    // The whole wait is its scheduling, its start and its end in the history, whatever the number of looks.
    expect(Number(completed!.eventId) - Number(scheduled[0]!.eventId)).toBeLessThanOrEqual(2);
  }, 540_000);

  it('cancelling a frozen pipeline ends its wait: the activity hears of it at its next heartbeat and looks no more', async () => {
    const app = 'cancelled-in-freeze';
    const reads = jest.spyOn(h.stack.dependencies.charts, 'readImageTag');
    const readsOfApp = () => reads.mock.calls.filter(([name]) => name === app).length;
    try {
      await h.stack.charts.writeImageTag(app, 'staging', 'initial', { promote_deployment: true, automatic_deploys_enabled: false });
      const { workflowId } = await h.startCi(app, await h.stack.merge(app));
      await h.waitForStatus(workflowId, (s) => s.environments[1]?.state === 'FROZEN', 'the pipeline to stop at the staging freeze');
      await waitFor(async () => ((await rechecksSoFar(workflowId)) ?? 0) > 0 || undefined, { timeoutMs: 30_000, description: 'the wait to heartbeat' });

      expect((await h.cli(['cancel', workflowId])).code).toBe(0);
      const cancelled = await h.waitForStatus(workflowId, (s) => s.status === 'CANCELLED', 'the frozen pipeline to be cancelled');
      expect(cancelled.environments[1]!.state).toBe('CANCELLED');
      // Heartbeats reach the server every 4 s here (80% of the heartbeat timeout): the looks stop within that.
      const stopped = await waitFor(
        async () => {
          const before = readsOfApp();
          await new Promise((resolve) => setTimeout(resolve, 500));
          return readsOfApp() === before ? before : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 1, description: 'the cancelled wait to stop looking at the file' },
      );
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(readsOfApp()).toBe(stopped);
    } finally {
      reads.mockRestore();
    }
  }, 120_000);
});
