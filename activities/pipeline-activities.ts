import { PermanentHttpError, RefNotFoundError, TransientHttpError } from '../common/errors';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { findApp, type AppConfig, type Catalogue, type EnvironmentConfig } from '../common/catalogue';
import { deployedToTag, InvalidNameError, isFullSha, shortSha, validateAppName, validateEnvironmentName, validateGitRef, validateImageTag } from '../common/names';
import { type ArgoApplicationStatus, type ArgoCd, type ChartsRepository, type CompareStatus, type DeploymentState, type DeploymentTracker, type Notifier, type ImageRegistry, type ImageTagChange, type ReleaseApp, type SmokeCheckOutcome, type SmokeTester, type SourceHost } from '../common/ports';
import { FailureTypes, type LaneRequest, type PipelineInput, type ReleasePlan } from '../common/types';
import { msUntilWindowOpens } from '../common/deploy-windows';
import { acquireLaneSignal, awaitingApprovalSignal, LANE_WORKFLOW_TYPE, laneWorkflowId } from '../workflows/definitions';

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
  webUi?: { url: string; namespace: string };
  registry: ImageRegistry;
  charts: ChartsRepository;
  argoCd: ArgoCd;
  releaseApp: ReleaseApp;
  smokeTester: SmokeTester;
  polling: PollingSettings;
}

export interface EnvironmentStep {
  app: string;
  environment: string;
  tag: string;
  /** A rollback is its own deployment: its own charts commit message and release record. */
  purpose?: 'deploy' | 'rollback';
}

export interface BumpRequest extends EnvironmentStep {
  /** Automatic deploys stop at `automatic_deploys_enabled: false`; manual ones do not. */
  respectFreeze: boolean;
  /** Why we roll back, for the charts commit message. */
  reason?: string;
}

export type BumpOutcome = ({ frozen: false } & ImageTagChange) | { frozen: true; path: string };

export interface LaneSignalRequest {
  app: string;
  environment: string;
  signal: 'acquire' | 'awaitingApproval';
  request: LaneRequest;
}

export interface DeployedRelease {
  /** What the environment's image-tag file holds now. */
  tag?: string;
  /** The commit that tag was built from, when known. */
  sha?: string;
  /** How our commit relates to it: `ahead` means ours is newer. */
  relation: CompareStatus | 'unknown';
}

export interface SyncTarget extends EnvironmentStep {
  chartsCommit: string;
}

export interface SyncedState {
  revision: string;
  health: string;
}

export interface BuildRequest {
  app: string;
  sha: string;
  tag: string;
}

const STALE_REFRESH_EVERY = 5;

function permanent(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** Turns what an adapter throws into the failure the workflow should see: permanent ones do not retry. */
function classify(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof RefNotFoundError) return permanent(FailureTypes.RefNotFound, err.message);
  if (err instanceof InvalidNameError) return permanent(FailureTypes.InvalidInput, err.message);
  if (err instanceof PermanentHttpError) return permanent(FailureTypes.PermanentHttpError, err.message);
  // Back off as long as the server asked (Retry-After, GitHub's rate-limit reset), within reason.
  if (err instanceof TransientHttpError && err.retryAfterMs !== undefined) {
    return ApplicationFailure.create({ type: 'TransientHttpError', message: err.message, nextRetryDelay: Math.min(Math.max(err.retryAfterMs, 1000), 15 * 60_000) });
  }
  return err;
}

async function classified<T>(work: () => Promise<T>): Promise<T> {
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
async function withinAttempts<T>(maximumAttempts: number, work: () => Promise<T>): Promise<T> {
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

function nextInterval(current: number, polling: PollingSettings): number {
  return Math.min(Math.ceil(current * 1.5), polling.maxIntervalMs);
}

export function createActivities(deps: ActivityDependencies) {
  const { catalogue, sourceHost, registry, charts, argoCd, releaseApp, smokeTester, polling, deployments, notifier, webUi } = deps;

  function appConfig(name: string): AppConfig {
    validateAppName(name);
    const app = findApp(catalogue, name);
    if (!app) {
      throw permanent(FailureTypes.UnknownApp, `unknown app "${name}": it is not in the app catalogue ${catalogue.file}`);
    }
    return app;
  }

  function environmentConfig(app: AppConfig, name: string): EnvironmentConfig {
    validateEnvironmentName(name);
    const env = app.environments.find((e) => e.name === name);
    if (!env) {
      const known = app.environments.map((e) => e.name).join(', ');
      throw permanent(FailureTypes.InvalidInput, `app "${app.name}" has no environment "${name}" (it has: ${known})`);
    }
    return env;
  }

  async function imageTagFor(app: AppConfig, sha: string): Promise<string> {
    if (app.tagScheme === 'sha') return sha;
    if (app.tagScheme === 'short-sha') return shortSha(sha);
    const tag = await sourceHost.findTagForCommit(app.repo, sha, new RegExp(app.releaseTagPattern));
    if (!tag) {
      throw permanent(
        FailureTypes.RefNotFound,
        `commit ${shortSha(sha)} of ${app.repo} has no release tag matching /${app.releaseTagPattern}/; tag the commit before deploying it`,
      );
    }
    return validateImageTag(tag);
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
      interval = nextInterval(interval, polling);
    }
  }

  return {
    /** Step 1: validate the input against the catalogue and fix the commit, tag and environments. */
    async resolveRelease(input: PipelineInput): Promise<ReleasePlan> {
      return withinAttempts(catalogue.stepRetry.maximumAttempts, async () => {
        const app = appConfig(input.app);
        validateGitRef(input.ref);
        if (input.trigger !== 'ci' && input.trigger !== 'manual') {
          throw permanent(FailureTypes.InvalidInput, `trigger must be "ci" or "manual", not ${JSON.stringify(input.trigger)}`);
        }
        if (input.trigger === 'manual' && !input.environment) {
          throw permanent(FailureTypes.InvalidInput, 'a manual deploy names the one environment to deploy');
        }
        if (input.trigger === 'ci' && input.environment) {
          throw permanent(FailureTypes.InvalidInput, 'a CI pipeline deploys every environment in order; name an environment only for a manual deploy');
        }
        const environments = input.environment ? [environmentConfig(app, input.environment)] : app.environments;
        const sha = await sourceHost.resolveRef(app.repo, input.ref);
        const tag = await imageTagFor(app, sha);
        const selfApprovalMatters = input.trigger === 'ci' && environments.some((env) => !env.allowSelfApproval);
        const authorLogin = selfApprovalMatters ? await sourceHost.commitAuthor(app.repo, sha) : undefined;
        return {
          app: app.name,
          repo: app.repo,
          sha,
          tag,
          approvalTimeoutMs: app.approvalTimeoutMs,
          buildTimeoutMs: app.build.timeoutMs,
          authorLogin,
          freezeRecheckIntervalMs: catalogue.freezeRecheckIntervalMs,
          stepRetry: catalogue.stepRetry,
          environments: environments.map((env) => ({
            name: env.name,
            continuousDeployment: input.trigger === 'ci' && env.continuousDeployment,
            approvers: env.approvers,
            allowSelfApproval: env.allowSelfApproval,
            hasDeployWindows: env.deployWindows.length > 0,
            syncTimeoutMs: env.syncTimeoutMs,
          })),
        };
      });
    },

    async imageExists(app: string, tag: string): Promise<boolean> {
      return classified(() => registry.hasImage(appConfig(app).imageRepository, validateImageTag(tag)));
    },

    /** Step 2: ask GitHub Actions to build the image, unless a build for this commit is already known. */
    async dispatchImageBuild(request: BuildRequest): Promise<void> {
      return classified(async () => {
        const app = appConfig(request.app);
        // The build workflow's run-name carries the commit, so a retried dispatch can see the first one.
        const runs = await sourceHost.listWorkflowRuns(app.repo, app.build.workflow);
        const running = runs.some((run) => run.displayTitle.includes(request.sha) && run.conclusion !== 'failure' && run.conclusion !== 'cancelled');
        if (running) return;
        await sourceHost.dispatchWorkflow(app.repo, app.build.workflow, app.build.ref, { gitRef: request.sha });
      });
    },

    /** Waits for the image; the workflow bounds it with the app's build timeout. */
    async waitForImage(request: BuildRequest): Promise<void> {
      return classified(async () => {
        const app = appConfig(request.app);
        const tag = validateImageTag(request.tag);
        await pollUntil(async () => {
          if (await registry.hasImage(app.imageRepository, tag)) return true;
          const runs = await sourceHost.listWorkflowRuns(app.repo, app.build.workflow);
          const ours = runs.filter((run) => run.displayTitle.includes(request.sha));
          const latest = ours.sort((a, b) => b.id - a.id)[0];
          if (latest && latest.status === 'completed' && latest.conclusion !== 'success') {
            const where = latest.htmlUrl ? ` (${latest.htmlUrl})` : '';
            throw permanent(
              FailureTypes.ImageBuildFailed,
              `image build for ${app.name} ${shortSha(request.sha)} ended "${latest.conclusion}"${where}; no image ${app.imageRepository}:${tag}`,
            );
          }
          return undefined;
        });
      });
    },

    /** Step 3.2: one charts commit per environment; a retry finds the commit it already made. */
    async bumpImageTag(step: BumpRequest): Promise<BumpOutcome> {
      return classified(async () => {
        const app = appConfig(step.app);
        const env = environmentConfig(app, step.environment);
        const tag = validateImageTag(step.tag);
        if (step.respectFreeze) {
          const file = await charts.readImageTag(app.name, env.name);
          // Our own earlier commit may already be there (a retry); a freeze set after it does not undo it.
          if (!file.automaticDeploysEnabled && file.imageTag !== tag) return { frozen: true, path: file.path };
        }
        const message =
          step.purpose === 'rollback'
            ? `Roll back ${app.name} to ${tag} in ${env.name}${step.reason ? `: ${step.reason}` : ''}`
            : `Deploy ${app.name} ${tag} to ${env.name}`;
        return { frozen: false, ...(await charts.setImageTag(app.name, env.name, tag, message.slice(0, 500))) };
      });
    },

    /** Step 3.1: what the environment runs now, and whether our commit is newer (GitHub compare). */
    async compareWithDeployed(step: EnvironmentStep & { sha: string }): Promise<DeployedRelease> {
      return classified(async () => {
        const app = appConfig(step.app);
        const env = environmentConfig(app, step.environment);
        const file = await charts.readImageTag(app.name, env.name);
        if (!file.imageTag) return { relation: 'unknown' };
        let deployedSha: string | undefined;
        if (isFullSha(file.imageTag)) deployedSha = file.imageTag;
        else {
          try {
            deployedSha = await sourceHost.resolveRef(app.repo, file.imageTag);
          } catch (err) {
            if (!(err instanceof RefNotFoundError)) throw err;
          }
        }
        if (!deployedSha) return { tag: file.imageTag, relation: 'unknown' };
        if (deployedSha === step.sha) return { tag: file.imageTag, sha: deployedSha, relation: 'identical' };
        return { tag: file.imageTag, sha: deployedSha, relation: await sourceHost.compareCommits(app.repo, deployedSha, step.sha) };
      });
    },

    /** Is `head` newer than `base`? (GitHub compare: `ahead` means it is.) */
    async compareCommits(request: { app: string; base: string; head: string }): Promise<CompareStatus> {
      return classified(() => sourceHost.compareCommits(appConfig(request.app).repo, request.base, request.head));
    },

    /** Signal-with-start: the lane workflow may have ended while idle. */
    async signalLane(request: LaneSignalRequest): Promise<void> {
      return classified(async () => {
        const app = appConfig(request.app);
        const env = environmentConfig(app, request.environment);
        const { client, info } = Context.current();
        await client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, {
          workflowId: laneWorkflowId(info.taskQueue, app.name, env.name),
          taskQueue: info.taskQueue,
          args: [{ app: app.name, environment: env.name }],
          signal: request.signal === 'acquire' ? acquireLaneSignal : awaitingApprovalSignal,
          signalArgs: [request.request],
        });
      });
    },

    /** 0 when automatic deploys may run now; otherwise how long until the next deploy window opens. */
    async msUntilDeployWindow(request: { app: string; environment: string; nowMs: number }): Promise<number> {
      return classified(async () => {
        const env = environmentConfig(appConfig(request.app), request.environment);
        return msUntilWindowOpens(env.deployWindows, request.nowMs);
      });
    },

    async isTeamMember(request: { team: string; login: string }): Promise<boolean> {
      return classified(async () => {
        const [org, team] = request.team.replace(/^@/, '').split('/');
        return sourceHost.isTeamMember(org!, team!, request.login);
      });
    },

    /** Step 3.3: mark the image as deployed to the environment in ECR. */
    async tagImage(step: EnvironmentStep): Promise<void> {
      return classified(async () => {
        const app = appConfig(step.app);
        const env = environmentConfig(app, step.environment);
        await registry.addTag(app.imageRepository, validateImageTag(step.tag), deployedToTag(env.name));
      });
    },

    /** Step 3.4: the idempotency key is the pipeline and environment, so a retry cannot record twice. */
    async notifyReleaseApp(step: EnvironmentStep): Promise<void> {
      return classified(async () => {
        const app = appConfig(step.app);
        const env = environmentConfig(app, step.environment);
        const { info } = Context.current();
        const pipelineId = info.workflowExecution?.workflowId ?? info.activityId;
        await releaseApp.recordDeployment(
          { repo: app.repo, environment: env.name, version: validateImageTag(step.tag) },
          `${pipelineId}/${env.name}${step.purpose === 'rollback' ? '/rollback' : ''}`,
        );
      });
    },

    /** Step 3.5: refresh, then poll until Argo CD runs our charts commit (or a later one) Synced and Healthy. */
    async waitForArgoSync(target: SyncTarget): Promise<SyncedState> {
      return classified(async () => {
        const app = appConfig(target.app);
        const env = environmentConfig(app, target.environment);
        const knownDescendants = new Set<string>([target.chartsCommit]);
        const atOrAfterOurs = async (revision: string | undefined): Promise<boolean> => {
          // Argo CD reports what it reports; anything but a commit SHA is "not yet ours", never a reason to fail.
          if (!revision || !isFullSha(revision)) return false;
          if (knownDescendants.has(revision)) return true;
          const ok = await charts.isAncestor(target.chartsCommit, revision);
          if (ok) knownDescendants.add(revision);
          return ok;
        };
        return pollUntil(async (attempt) => {
          const refresh = attempt % STALE_REFRESH_EVERY === 0 ? 'normal' : undefined;
          const status: ArgoApplicationStatus = await argoCd.getApplication(env.argocdApplication, refresh);
          // A status from before our commit says nothing about our release, whatever it says.
          if (!(await atOrAfterOurs(status.syncRevision))) return undefined;
          const where = `Argo CD application ${status.name} at charts commit ${shortSha(status.syncRevision!)}`;
          const operationIsOurs = status.operationRevision === undefined || (await atOrAfterOurs(status.operationRevision));
          // Until our revision is synced, the health Argo CD reports is the old rollout's.
          if (status.syncStatus === 'Synced' && operationIsOurs && status.healthStatus === 'Degraded') {
            throw permanent(FailureTypes.ArgoCdDegraded, `${where} is Degraded${status.healthMessage ? `: ${status.healthMessage}` : ''}`);
          }
          if (operationIsOurs && (status.operationPhase === 'Failed' || status.operationPhase === 'Error')) {
            throw permanent(FailureTypes.ArgoCdSyncFailed, `${where}: sync ${status.operationPhase}${status.operationMessage ? `: ${status.operationMessage}` : ''}`);
          }
          const done =
            status.syncStatus === 'Synced' &&
            operationIsOurs &&
            (status.operationPhase === undefined || status.operationPhase === 'Succeeded') &&
            status.healthStatus === 'Healthy';
          return done ? { revision: status.syncRevision!, health: status.healthStatus } : undefined;
        });
      });
    },

    /** GitHub shows what is deployed where; one deployment per pipeline and environment. */
    async recordGitHubDeployment(request: { app: string; environment: string; sha: string; state: DeploymentState; description: string }): Promise<void> {
      return classified(async () => {
        const app = appConfig(request.app);
        const env = environmentConfig(app, request.environment);
        const { workflowExecution } = Context.current().info;
        const pipelineId = workflowExecution?.workflowId ?? 'unknown';
        const id = await deployments.ensureDeployment(app.repo, {
          sha: request.sha,
          environment: env.name,
          pipelineId,
          description: `Deploy pipeline ${pipelineId}`,
          production: env.name === 'production',
        });
        await deployments.setDeploymentState(app.repo, id, {
          state: request.state,
          description: request.description,
          environmentUrl: env.url,
          logUrl: webUi ? `${webUi.url}/namespaces/${encodeURIComponent(webUi.namespace)}/workflows/${encodeURIComponent(pipelineId)}` : undefined,
        });
      });
    },

    /**
     * Tells people (Slack) about what needs them or went wrong; nothing when Slack is not configured. The key comes
     * from this step's own identity, which its retries share, so the workflow passes nothing new (running
     * pipelines replay unchanged) and a retry after a crash finds the message the crashed attempt posted.
     */
    async notifyPeople(request: { text: string }): Promise<void> {
      if (!notifier) return;
      const { workflowExecution, activityId, attempt, scheduledTimestampMs } = Context.current().info;
      const key = `${workflowExecution?.workflowId ?? '-'}/${workflowExecution?.runId ?? '-'}/${activityId}`;
      return classified(() => notifier.notify({ text: request.text, key, firstAttempt: attempt === 1, firstScheduledAtMs: scheduledTimestampMs }));
    },

    /** Step 3.6: every check passes within its attempts, or the step fails with what was wrong. */
    async runSmokeTests(step: EnvironmentStep): Promise<SmokeCheckOutcome[]> {
      return classified(async () => {
        const app = appConfig(step.app);
        const env = environmentConfig(app, step.environment);
        const ctx = Context.current();
        const outcomes: SmokeCheckOutcome[] = [];
        for (const check of env.smokeChecks) {
          let outcome = await smokeTester.run(check);
          for (let attempt = 2; !outcome.ok && attempt <= env.smokeAttempts; attempt++) {
            ctx.heartbeat({ check: check.url, attempt });
            await ctx.sleep(env.smokeRetryIntervalMs);
            outcome = await smokeTester.run(check);
          }
          if (!outcome.ok) {
            throw permanent(
              FailureTypes.SmokeTestFailed,
              `smoke test failed for ${app.name} ${step.tag} in ${env.name}: ${outcome.detail} (after ${env.smokeAttempts} attempts)`,
            );
          }
          outcomes.push(outcome);
        }
        return outcomes;
      });
    },
  };
}

export type PipelineActivities = ReturnType<typeof createActivities>;
