/** Delivery metrics from the pipelines' records: which environments count as deploys, and the four numbers. */
import { computeDeliveryMetrics, deployAttemptsOf, type DeployAttempt } from '../common/delivery-metrics';
import type { EnvironmentStatus, PipelineStatus } from '../common/types';

const NOW = new Date('2026-03-31T12:00:00Z');
const at = (day: number, hour = 12, minute = 0) => new Date(Date.UTC(2026, 2, day, hour, minute)).toISOString();

function pipeline(environments: EnvironmentStatus[], workflowId = 'deploy-whitehall-1'): PipelineStatus {
  return { workflowId, app: 'whitehall', ref: 'main', trigger: 'ci', sha: 'a'.repeat(40), status: 'SUCCEEDED', environments };
}

function attempt(outcome: DeployAttempt['outcome'], startedAt: string, finishedAt: string, extra: Partial<DeployAttempt> = {}): DeployAttempt {
  return { app: 'whitehall', environment: 'production', pipeline: `p-${startedAt}`, startedAt, finishedAt, outcome, ...extra };
}

describe('the deploys a pipeline record holds', () => {
  it('counts an environment once its charts were bumped, as deployed, rolled back or failed', () => {
    const attempts = deployAttemptsOf(
      pipeline([
        { environment: 'integration', state: 'DEPLOYED', chartsCommit: 'c1', startedAt: at(1), finishedAt: at(1, 12, 5) },
        { environment: 'staging', state: 'ROLLED_BACK', chartsCommit: 'c2', startedAt: at(1, 13), finishedAt: at(1, 13, 10) },
        { environment: 'production', state: 'FAILED', chartsCommit: 'c3', startedAt: at(1, 14), transitions: [{ state: 'DEPLOYING', at: at(1, 14) }, { state: 'FAILED', at: at(1, 14, 3) }] },
      ]),
      at(1, 11),
    );
    expect(attempts.map((a) => [a.environment, a.outcome, a.startedAt, a.finishedAt, a.changedAt])).toEqual([
      ['integration', 'deployed', at(1), at(1, 12, 5), at(1, 11)],
      ['staging', 'rolled-back', at(1, 13), at(1, 13, 10), at(1, 11)],
      ['production', 'failed', at(1, 14), at(1, 14, 3), at(1, 11)],
    ]);
  });

  it('leaves out what deployed nothing: already running it, stopped before the bump, still going, superseded', () => {
    expect(
      deployAttemptsOf(
        pipeline([
          { environment: 'integration', state: 'DEPLOYED', finishedAt: at(1) },
          { environment: 'staging', state: 'FAILED', startedAt: at(1), finishedAt: at(1) },
          { environment: 'production', state: 'SMOKE_TESTING', chartsCommit: 'c', startedAt: at(1) },
          { environment: 'qa', state: 'SUPERSEDED', finishedAt: at(1) },
        ]),
      ),
    ).toEqual([]);
  });

  it('starts the clock at the deploy that bumped the charts, not at an earlier try a freeze stopped', () => {
    const [frozenFirst] = deployAttemptsOf(
      pipeline([
        {
          environment: 'staging',
          state: 'DEPLOYED',
          chartsCommit: 'c',
          startedAt: at(1, 9),
          finishedAt: at(1, 15, 2),
          transitions: [
            { state: 'DEPLOYING', at: at(1, 9) },
            { state: 'FROZEN', at: at(1, 9, 1) },
            { state: 'DEPLOYING', at: at(1, 15) },
            { state: 'DEPLOYED', at: at(1, 15, 2) },
          ],
        },
      ]),
    );
    expect(frozenFirst!.startedAt).toBe(at(1, 15));
  });
});

describe('delivery metrics', () => {
  it('deploys, a rollback and the restore: frequency, lead time, change failure rate and time to restore', () => {
    const [metrics] = computeDeliveryMetrics(
      [
        attempt('deployed', at(10), at(10, 12, 10), { changedAt: at(10, 11, 50) }),
        attempt('rolled-back', at(11), at(11, 12, 5), { changedAt: at(11, 11) }),
        attempt('deployed', at(11, 13), at(11, 13, 30), { changedAt: at(11, 12, 30) }),
        attempt('deployed', at(12), at(12, 12, 40), { changedAt: at(12, 11, 40) }),
      ],
      { now: NOW, windowDays: 30 },
    );
    expect(metrics).toEqual({
      app: 'whitehall',
      environment: 'production',
      windowDays: 30,
      deployments: 3,
      failures: 1,
      deploymentsPerDay: 0.1,
      changeFailureRate: 0.25,
      // Lead times 20 min, 60 min, 60 min: the median.
      leadTimeSeconds: 3600,
      // From the failed deploy's start (12:00) to the restoring deploy's end (13:30).
      timeToRestoreSeconds: 5400,
      restores: 1,
      lastDeployedAt: at(12, 12, 40),
    });
  });

  it('takes consecutive failures as one incident, and says when a failure is not restored yet', () => {
    const [metrics] = computeDeliveryMetrics(
      [
        attempt('failed', at(20), at(20, 12, 1)),
        attempt('rolled-back', at(20, 14), at(20, 14, 5)),
        attempt('deployed', at(20, 16), at(20, 16, 30)),
        attempt('rolled-back', at(21, 9), at(21, 9, 10)),
      ],
      { now: NOW },
    );
    expect(metrics).toMatchObject({ deployments: 1, failures: 3, changeFailureRate: 0.75, timeToRestoreSeconds: 4.5 * 3600, restores: 1, failingSince: at(21, 9) });
    expect(metrics!.leadTimeSeconds).toBeUndefined();
  });

  it('counts only deploys that finished in the window, each once however often its record is read', () => {
    const repeated = attempt('deployed', at(30), at(30, 12, 1), { changedAt: at(30, 11) });
    const [metrics] = computeDeliveryMetrics([attempt('deployed', at(1), at(1, 12, 1)), repeated, { ...repeated }], { now: NOW, windowDays: 7 });
    expect(metrics).toMatchObject({ deployments: 1, windowDays: 7, deploymentsPerDay: 1 / 7, changeFailureRate: 0 });
  });

  it('lists every known app and environment, in promotion order, with zero deploys rather than nothing', () => {
    const rows = computeDeliveryMetrics([attempt('deployed', at(30), at(30, 12, 1), { environment: 'staging' })], {
      now: NOW,
      known: [
        { app: 'whitehall', environments: ['integration', 'staging', 'production'] },
        { app: 'content-publisher', environments: ['integration'] },
      ],
    });
    expect(rows.map((r) => [r.app, r.environment, r.deployments, r.changeFailureRate])).toEqual([
      ['content-publisher', 'integration', 0, undefined],
      ['whitehall', 'integration', 0, undefined],
      ['whitehall', 'staging', 1, 0],
      ['whitehall', 'production', 0, undefined],
    ]);
  });
});
