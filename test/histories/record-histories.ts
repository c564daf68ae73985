/**
 * Records one history per pipeline shape from real runs, for the replay test (test/replay.test.ts).
 * Run with `npm run record-histories` after a deliberate change of workflow behaviour, never to make a
 * failing replay pass: a replay failure means running pipelines would break (use patched() instead).
 */
import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { testAddress } from '../support/temporal';
import { waitFor } from '../support/env';
import { startHarness, type PipelineHarness } from '../support/pipeline';
import { laneWorkflowId } from '../../workflows/definitions';

const NEEDS_APPROVAL = {
  environments: {
    integration: { continuousDeployment: true },
    staging: { continuousDeployment: false },
    production: { continuousDeployment: false },
  },
};

const PROJECT_ROOT = resolve(__dirname, '..', '..');
/** node_modules may be a link to another checkout's; its stack frames are scrubbed as the project's own. */
const NODE_MODULES = realpathSync(join(PROJECT_ROOT, 'node_modules'));
const temporalCli = execFileSync('node', [join(__dirname, '..', '..', 'scripts', 'ensure-temporal-cli.mjs')], { encoding: 'utf8' }).trim();

/** The CLI writes the proto3 JSON that Worker.runReplayHistory reads. */
async function save(h: PipelineHarness, shape: string, workflowId: string): Promise<void> {
  void h;
  const json = execFileSync(temporalCli, ['workflow', 'show', '--workflow-id', workflowId, '--address', testAddress(), '--output', 'json'], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  // Stack traces name where this checkout lives; that is nobody's business and changes nothing in a replay.
  const scrubbed = json.split(NODE_MODULES).join('<project>/node_modules').split(PROJECT_ROOT).join('<project>').replace(/\/tmp\/[^\s"\\)]+/g, '<tmp>');
  await writeFile(join(__dirname, `${shape}.json`), scrubbed.endsWith('\n') ? scrubbed : `${scrubbed}\n`);
}

async function settle(h: PipelineHarness, workflowId: string): Promise<void> {
  await h.client.workflow.getHandle(workflowId).result().catch(() => undefined);
}

describe('record pipeline histories', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({
      apps: {
        'cd-app': {},
        'gated-app': NEEDS_APPROVAL,
        'expiring-app': { ...NEEDS_APPROVAL, approvalTimeout: '1s' },
        'flags-app': { promotion: 'chartsFlags' },
        'suite-app': { environments: { integration: { smokeSuite: 'argoWorkflow' }, staging: { smokeSuite: 'githubWorkflow' } } },
      },
      freezeRecheckInterval: '1s',
      suite: { runMs: 100, timeout: '1m' },
      // A cancellation reaches a running suite's step with its next heartbeat, at most every 0.8 × this.
      stepRetry: { heartbeatTimeout: '5s' },
    });
  });
  afterAll(async () => h?.close());

  it('records every shape', async () => {
    // CD all the way to production, building the image first.
    const built = await h.stack.merge('cd-app', { buildImage: false });
    const cd = await h.startCi('cd-app', built);
    await settle(h, cd.workflowId);
    await save(h, 'cd-to-production', cd.workflowId);

    // GOV.UK's rule: each environment's file, at the commit Argo CD synced, promotes the release onward.
    const flags = await h.startCi('flags-app', await h.stack.merge('flags-app'));
    await settle(h, flags.workflowId);
    expect((await h.status(flags.workflowId)).status).toBe('SUCCEEDED');
    await save(h, 'charts-flags-promoted', flags.workflowId);

    // Awaiting approval (a pipeline mid-flight), then approved, then rejected, then expired.
    const waiting = await h.startCi('gated-app', await h.stack.merge('gated-app'));
    await h.waitForStatus(waiting.workflowId, (s) => s.status === 'AWAITING_APPROVAL', 'staging approval');
    await save(h, 'awaiting-approval', waiting.workflowId);
    await h.cli(['approve', waiting.workflowId, '--environment', 'staging', '--approver', 'alice']);
    await h.waitForStatus(waiting.workflowId, (s) => s.awaitingApprovalFor === 'production', 'production approval');
    await h.cli(['approve', waiting.workflowId, '--environment', 'production', '--approver', 'bob']);
    await settle(h, waiting.workflowId);
    await save(h, 'approved', waiting.workflowId);

    const rejected = await h.startCi('gated-app', await h.stack.merge('gated-app'));
    await h.waitForStatus(rejected.workflowId, (s) => s.status === 'AWAITING_APPROVAL', 'staging approval');
    await h.cli(['reject', rejected.workflowId, '--environment', 'staging', '--approver', 'carol', '--reason', 'not today']);
    await settle(h, rejected.workflowId);
    await save(h, 'rejected', rejected.workflowId);

    const expired = await h.startCi('expiring-app', await h.stack.merge('expiring-app'));
    await settle(h, expired.workflowId);
    await save(h, 'expired', expired.workflowId);

    // Superseded: a newer commit reaches staging while the older one waits for approval there.
    const older = await h.startCi('gated-app', await h.stack.merge('gated-app'));
    await h.waitForStatus(older.workflowId, (s) => s.status === 'AWAITING_APPROVAL', 'staging approval');
    const newer = await h.startCi('gated-app', await h.stack.merge('gated-app'));
    await h.waitForStatus(newer.workflowId, (s) => s.status === 'AWAITING_APPROVAL', 'staging approval');
    await h.cli(['approve', newer.workflowId, '--environment', 'staging', '--approver', 'alice']);
    await settle(h, older.workflowId);
    await save(h, 'superseded', older.workflowId);
    await h.cli(['cancel', newer.workflowId]);
    await settle(h, newer.workflowId);
    await save(h, 'cancelled', newer.workflowId);

    // Rolled back: the smoke test fails in integration.
    h.stack.endpoints.failChecks('cd-app', 'integration', { status: 500 });
    const rolledBack = await h.startCi('cd-app', await h.stack.merge('cd-app'));
    await settle(h, rolledBack.workflowId);
    h.stack.endpoints.restore('cd-app', 'integration');
    await save(h, 'rolled-back', rolledBack.workflowId);
    await h.cli(['hold', 'clear', '--app', 'cd-app', '--environment', 'integration', '--approver', 'alice']);

    // End-to-end suites: integration's Argo workflow fails (rolled back); then a pipeline cancelled mid-suite.
    h.stack.setSuiteOutcome('suite-app', 'integration', { result: 'fail' });
    const suiteFailed = await h.startCi('suite-app', await h.stack.merge('suite-app'));
    await settle(h, suiteFailed.workflowId);
    await save(h, 'suite-rolled-back', suiteFailed.workflowId);
    await h.cli(['hold', 'clear', '--app', 'suite-app', '--environment', 'integration', '--approver', 'alice']);
    h.stack.setSuiteOutcome('suite-app', 'integration', { result: 'hang' });
    const suiteCancelled = await h.startCi('suite-app', await h.stack.merge('suite-app'));
    await waitFor(() => h.stack.argoWorkflowsOf('integration').workflowsOf('suite-app').some((w) => w.phase === 'Running'), { timeoutMs: 60_000, description: 'the suite to run' });
    await h.cli(['cancel', suiteCancelled.workflowId]);
    await settle(h, suiteCancelled.workflowId);
    await save(h, 'suite-cancelled', suiteCancelled.workflowId);
    h.stack.setSuiteOutcome('suite-app', 'integration', { result: 'pass' });

    // Manual deploy of a branch to staging (puts a hold there).
    const hotfix = await h.stack.merge('cd-app', { branch: 'hotfix' });
    const manual = await h.cli(['start', '--app', 'cd-app', '--ref', 'hotfix', '--environment', 'staging', '--allow-unmerged', '--json']);
    const manualId = JSON.parse(manual.out.join('\n')).workflowId as string;
    expect(manualId).toContain(hotfix);
    await settle(h, manualId);
    await save(h, 'manual', manualId);
    // A manual deploy to an environment that needs approval waits for one.
    const gatedManual = await h.cli(['start', '--app', 'gated-app', '--ref', await h.stack.merge('gated-app'), '--environment', 'production', '--json']);
    const gatedManualId = JSON.parse(gatedManual.out.join('\n')).workflowId as string;
    await h.waitForStatus(gatedManualId, (s) => s.awaitingApprovalFor === 'production', 'the manual deploy to wait for approval');
    await h.cli(['approve', gatedManualId, '--environment', 'production', '--approver', 'bob']);
    await settle(h, gatedManualId);
    await save(h, 'manual-approved', gatedManualId);
    // Staging now runs a branch main lacks: automatic deploys would stop there for a person (diverged).
    await h.stack.charts.writeImageTag('cd-app', 'staging', 'initial', { automatic_deploys_enabled: true });

    // Frozen, then unfrozen.
    await h.stack.charts.writeImageTag('cd-app', 'integration', 'frozen-tag', { automatic_deploys_enabled: false });
    const frozen = await h.startCi('cd-app', await h.stack.merge('cd-app'));
    await h.waitForStatus(frozen.workflowId, (s) => s.environments[0]?.state === 'FROZEN', 'the freeze');
    await h.stack.charts.writeImageTag('cd-app', 'integration', 'frozen-tag', { automatic_deploys_enabled: true });
    await h.cli(['hold', 'clear', '--app', 'cd-app', '--environment', 'staging', '--approver', 'alice']);
    await settle(h, frozen.workflowId);
    await save(h, 'frozen-then-deployed', frozen.workflowId);

    // Three commits of one app at once: a queue (the older ones may end superseded by a newer one).
    const burstCommits = [await h.stack.merge('cd-app'), await h.stack.merge('cd-app'), await h.stack.merge('cd-app')];
    const burst = await Promise.all(burstCommits.map((sha) => h.startCi('cd-app', sha)));
    for (const pipeline of burst) await settle(h, pipeline.workflowId);

    // The oldest of two deploys integration before the newer one queues behind it, then waits for the newer one
    // to deploy there and ends SUPERSEDED on its way to staging (1.4).
    h.stack.argo.reportStaleFor('cd-app-integration', 120_000);
    const oldest = await h.startCi('cd-app', await h.stack.merge('cd-app'));
    await h.waitForStatus(oldest.workflowId, (s) => s.environments[0]?.state === 'WAITING_FOR_SYNC', 'the oldest to hold the integration lane');
    const following = await h.startCi('cd-app', await h.stack.merge('cd-app'));
    await h.waitForStatus(following.workflowId, (s) => s.environments[0]?.state === 'WAITING_FOR_LANE', 'the newer one to queue behind it');
    h.stack.argo.reportStaleFor('cd-app-integration', 0);
    await settle(h, oldest.workflowId);
    await settle(h, following.workflowId);
    await save(h, 'superseded-on-its-way', oldest.workflowId);

    // A lane that granted, queued, held and released, and told a queue why it waited.
    await save(h, 'lane', laneWorkflowId(h.taskQueue, 'cd-app', 'integration'));
  });
});
