import type { EnvironmentStatus, PipelineStatus } from './types';

/**
 * Delivery metrics (deployment frequency, lead time, change failure rate, time to restore) per app and
 * environment, computed from the pipelines' own records: what each pipeline's status says happened in each
 * environment. Pure: the records are read elsewhere (Temporal's visibility and the pipelines' results), so
 * every worker and the release app page compute the same numbers whatever restarted meanwhile.
 */

/** One deploy of a release to an environment that changed the charts: it went out, then stayed or was undone. */
export interface DeployAttempt {
  app: string;
  environment: string;
  pipeline: string;
  commit?: string;
  /** When the change was made: the commit's date where known, else when its pipeline started. */
  changedAt?: string;
  startedAt: string;
  finishedAt: string;
  outcome: 'deployed' | 'rolled-back' | 'failed';
}

export interface DeliveryMetrics {
  app: string;
  environment: string;
  windowDays: number;
  /** Deploys that stayed. */
  deployments: number;
  /** Deploys rolled back or failed after the charts changed. */
  failures: number;
  deploymentsPerDay: number;
  /** failures / (deployments + failures); undefined without any deploy. */
  changeFailureRate?: number;
  /** Median, from the change to its deploy finishing there. */
  leadTimeSeconds?: number;
  /** Median, from a failed deploy starting until a later deploy there stayed (consecutive failures are one incident). */
  timeToRestoreSeconds?: number;
  restores: number;
  /** A failure no deploy has restored yet: when it started. */
  failingSince?: string;
  lastDeployedAt?: string;
}

export const DEFAULT_METRICS_WINDOW_DAYS = 30;
const DAY_MS = 86_400_000;

function finishedAt(env: EnvironmentStatus): string | undefined {
  return env.finishedAt ?? env.transitions?.[env.transitions.length - 1]?.at;
}

/** When the deploy that bumped the charts began: a freeze before it may have stopped an earlier try. */
function deployStartedAt(env: EnvironmentStatus): string | undefined {
  return env.transitions?.filter((t) => t.state === 'DEPLOYING').pop()?.at ?? env.startedAt;
}

/**
 * The deploy attempts a pipeline's status records. An environment counts once its charts were bumped
 * (`chartsCommit`): one that already ran the release, or stopped before the bump, deployed nothing.
 */
export function deployAttemptsOf(status: PipelineStatus, changedAt?: string): DeployAttempt[] {
  return status.environments.flatMap((env): DeployAttempt[] => {
    const startedAt = deployStartedAt(env);
    if (!env.chartsCommit || !startedAt) return [];
    const outcome = env.state === 'DEPLOYED' ? 'deployed' : env.state === 'ROLLED_BACK' ? 'rolled-back' : env.state === 'FAILED' ? 'failed' : undefined;
    const finished = finishedAt(env);
    if (!outcome || !finished) return [];
    return [
      {
        app: status.app,
        environment: env.environment,
        pipeline: status.workflowId,
        ...(status.sha ? { commit: status.sha } : {}),
        ...(changedAt ? { changedAt } : {}),
        startedAt,
        finishedAt: finished,
        outcome,
      },
    ];
  });
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const ms = (iso: string) => Date.parse(iso);

/**
 * The metrics of every app and environment with a deploy that finished in the window, and of every one
 * `known` names (zero deploys rather than absent). Sorted by app, then in the order `known` gives.
 */
export function computeDeliveryMetrics(
  attempts: DeployAttempt[],
  options: { now: Date; windowDays?: number; known?: Array<{ app: string; environments: string[] }> },
): DeliveryMetrics[] {
  const windowDays = options.windowDays ?? DEFAULT_METRICS_WINDOW_DAYS;
  const since = options.now.getTime() - windowDays * DAY_MS;
  const groups = new Map<string, DeployAttempt[]>();
  const key = (app: string, environment: string) => `${app}\u0000${environment}`;
  for (const { app, environments } of options.known ?? []) for (const environment of environments) groups.set(key(app, environment), []);
  // A pipeline's record is read more than once when it is both listed and queried; count each deploy once.
  const seen = new Set<string>();
  for (const attempt of attempts) {
    const id = `${attempt.pipeline} ${attempt.environment} ${attempt.startedAt}`;
    if (seen.has(id) || ms(attempt.finishedAt) < since) continue;
    seen.add(id);
    const group = groups.get(key(attempt.app, attempt.environment)) ?? [];
    group.push(attempt);
    groups.set(key(attempt.app, attempt.environment), group);
  }
  const order = new Map((options.known ?? []).flatMap(({ app, environments }) => environments.map((environment, index) => [key(app, environment), index])));
  return [...groups.entries()]
    .map(([groupKey, group]) => {
      const [app, environment] = groupKey.split('\u0000') as [string, string];
      return metricsOf(app, environment, group, windowDays);
    })
    .sort((a, b) => a.app.localeCompare(b.app) || (order.get(key(a.app, a.environment)) ?? 99) - (order.get(key(b.app, b.environment)) ?? 99) || a.environment.localeCompare(b.environment));
}

function metricsOf(app: string, environment: string, group: DeployAttempt[], windowDays: number): DeliveryMetrics {
  const inOrder = [...group].sort((a, b) => ms(a.finishedAt) - ms(b.finishedAt));
  const deployed = inOrder.filter((a) => a.outcome === 'deployed');
  const failures = inOrder.length - deployed.length;
  const leadTimes = deployed.filter((a) => a.changedAt).map((a) => (ms(a.finishedAt) - ms(a.changedAt!)) / 1000);
  const restoreTimes: number[] = [];
  let failingSince: string | undefined;
  for (const attempt of inOrder) {
    if (attempt.outcome !== 'deployed') {
      failingSince ??= attempt.startedAt;
    } else if (failingSince) {
      restoreTimes.push((ms(attempt.finishedAt) - ms(failingSince)) / 1000);
      failingSince = undefined;
    }
  }
  return {
    app,
    environment,
    windowDays,
    deployments: deployed.length,
    failures,
    deploymentsPerDay: deployed.length / windowDays,
    ...(inOrder.length > 0 ? { changeFailureRate: failures / inOrder.length } : {}),
    ...(leadTimes.length > 0 ? { leadTimeSeconds: median(leadTimes) } : {}),
    ...(restoreTimes.length > 0 ? { timeToRestoreSeconds: median(restoreTimes) } : {}),
    restores: restoreTimes.length,
    ...(failingSince ? { failingSince } : {}),
    ...(deployed.length > 0 ? { lastDeployedAt: deployed[deployed.length - 1]!.finishedAt } : {}),
  };
}
