import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ArgoWorkflowsOfEnvironment } from '../common/smoke-suites';
import { DEFAULT_REGISTRY, findApp, type AppConfig, type ArgoCdOfEnvironment, type Catalogue, type EnvironmentConfig, type ImageLocation } from '../common/catalogue';
import { IdentityRefusedError, PermanentHttpError, PushRefusedError, RefNotFoundError, TransientHttpError } from '../common/errors';
import { InvalidNameError, validateAppName, validateEnvironmentName } from '../common/names';
import type { ActionsRuns, ArgoCd, ArgoWorkflows, ChartsRepository, DeploymentTracker, IdentityVerifier, ImageRegistry, Notifier, ReleaseApp, SmokeTester, SourceHost } from '../common/ports';
import { FailureTypes } from '../common/types';

/**
 * What every stage of the pipeline starts with, written once: the outside systems it may use, the app and
 * environment it acts on (names checked, looked up in the catalogue), failures sorted into "stop" (a
 * non-retryable ApplicationFailure) and "retry", and polling with heartbeats.
 */

export interface PollingSettings {
  /** First wait between two looks at Argo CD or ECR; grows by half each time up to the maximum. */
  initialIntervalMs: number;
  maxIntervalMs: number;
}

export interface ActivityDependencies {
  catalogue: Catalogue;
  sourceHost: SourceHost;
  deployments: DeploymentTracker;
  /** Absent when Slack is not configured. */
  notifier?: Notifier;
  /** For links to a pipeline's page. */
  webUi?: { url: string };
  /** ECR as the worker's AWS identity sees it: the catalogue's `ecr` registry. */
  registry: ImageRegistry;
  /** The catalogue's other registries by name (an entry named `ecr` replaces `registry`). */
  registries?: Record<string, ImageRegistry>;
  charts: ChartsRepository;
  argoCd: ArgoCd;
  /** The Argo CD of an environment's cluster, where the catalogue names one; `argoCd` otherwise. */
  argoCdOf?: (argocd: ArgoCdOfEnvironment) => ArgoCd;
  releaseApp: ReleaseApp;
  smokeTester: SmokeTester;
  /** The Argo Workflows of an environment's cluster, for `argoWorkflow` smoke suites. */
  argoWorkflowsOf?: (cluster: ArgoWorkflowsOfEnvironment) => ArgoWorkflows;
  /** The jobs and cancellation of GitHub Actions runs, for `githubWorkflow` smoke suites. */
  actionsRuns?: ActionsRuns;
  polling: PollingSettings;
  identity: IdentityVerifier;
}

/** A step that acts on one environment of one app. */
export interface EnvironmentStep {
  app: string;
  environment: string;
  tag: string;
  /** A rollback is its own deployment: its own charts commit message and release record. */
  purpose?: 'deploy' | 'rollback';
  /** The digest the pipeline recorded for the tag (absent in steps of pipelines started before 1.1 recorded one). */
  digest?: string;
}

export function permanent(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** Turns what an adapter throws into the failure the workflow should see: permanent ones do not retry. */
export function classify(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof RefNotFoundError) return permanent(FailureTypes.RefNotFound, err.message);
  if (err instanceof InvalidNameError) return permanent(FailureTypes.InvalidInput, err.message);
  if (err instanceof PermanentHttpError) return permanent(FailureTypes.PermanentHttpError, err.message);
  if (err instanceof PushRefusedError) return permanent(FailureTypes.ChartsPushRefused, err.message);
  if (err instanceof IdentityRefusedError) return permanent(FailureTypes.IdentityRefused, err.message);
  // Back off as long as the server asked (Retry-After, GitHub's rate-limit reset), within reason.
  if (err instanceof TransientHttpError && err.retryAfterMs !== undefined) {
    return ApplicationFailure.create({ type: 'TransientHttpError', message: err.message, nextRetryDelay: Math.min(Math.max(err.retryAfterMs, 1000), 15 * 60_000) });
  }
  return err;
}

/** Runs a step's work and throws what it throws as classify() sorts it. */
export async function classified<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw classify(err);
  }
}

/**
 * The workflow learns the catalogue's retry limit from resolveRelease itself, so it cannot put it on that step's
 * retry policy (10 attempts); the step applies the limit itself: its last allowed attempt fails for good, with the
 * same message.
 */
export async function withinAttempts<T>(maximumAttempts: number, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (caught) {
    const err = classify(caught);
    if (Context.current().info.attempt < maximumAttempts) throw err;
    if (err instanceof ApplicationFailure) {
      if (err.nonRetryable) throw err;
      throw ApplicationFailure.create({ type: err.type ?? undefined, message: err.message, details: err.details as unknown[] | undefined, nonRetryable: true });
    }
    if (err instanceof Error) throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
    throw err;
  }
}

/** What each stage's factory receives: the dependencies and the opening every step shares. */
export interface Stage {
  readonly deps: ActivityDependencies;
  /** The app's catalogue entry; a bad or unknown name fails for good. */
  app(name: string): AppConfig;
  /** The app's environment; a bad or unknown name fails for good. */
  environment(app: AppConfig, name: string): EnvironmentConfig;
  /** Both of the above, for a step that names an app and one of its environments. */
  target(step: { app: string; environment: string }): { app: AppConfig; env: EnvironmentConfig };
  /** Looks until `look` finds something, heartbeating and waiting longer each time; cancellation ends the wait. */
  pollUntil<T>(look: (attempt: number) => Promise<T | undefined>): Promise<T>;
  /** The adapter of the registry an image location names. */
  registryOf(location: ImageLocation): ImageRegistry;
}

export function createStage(deps: ActivityDependencies): Stage {
  const { catalogue, polling } = deps;

  function app(name: string): AppConfig {
    validateAppName(name);
    const found = findApp(catalogue, name);
    if (!found) throw permanent(FailureTypes.UnknownApp, `unknown app "${name}": it is not in the app catalogue ${catalogue.file}`);
    return found;
  }

  function environment(config: AppConfig, name: string): EnvironmentConfig {
    validateEnvironmentName(name);
    const env = config.environments.find((e) => e.name === name);
    if (!env) {
      const known = config.environments.map((e) => e.name).join(', ');
      throw permanent(FailureTypes.InvalidInput, `app "${config.name}" has no environment "${name}" (it has: ${known})`);
    }
    return env;
  }

  async function pollUntil<T>(look: (attempt: number) => Promise<T | undefined>): Promise<T> {
    const ctx = Context.current();
    let interval = polling.initialIntervalMs;
    for (let attempt = 0; ; attempt++) {
      const found = await look(attempt);
      if (found !== undefined) return found;
      ctx.heartbeat({ attempt });
      // Context.sleep ends early with a CancelledFailure when the pipeline is cancelled.
      await ctx.sleep(interval);
      interval = Math.min(Math.ceil(interval * 1.5), polling.maxIntervalMs);
    }
  }

  return {
    deps,
    app,
    environment,
    target(step) {
      const config = app(step.app);
      return { app: config, env: environment(config, step.environment) };
    },
    pollUntil,
    registryOf(location) {
      const found = deps.registries?.[location.registry] ?? (location.registry === DEFAULT_REGISTRY ? deps.registry : undefined);
      if (!found) throw permanent(FailureTypes.InvalidInput, `the worker has no adapter for registry "${location.registry}"`);
      return found;
    },
  };
}
