import { Context } from '@temporalio/activity';
import { RefNotFoundError } from '../common/errors';
import type { AppConfig } from '../common/catalogue';
import { isFullSha, validateImageTag } from '../common/names';
import type { CompareStatus, ImageTagChange } from '../common/ports';
import { FailureTypes } from '../common/types';
import { classified, permanent, type EnvironmentStep, type Stage } from './stage';

/**
 * How the release came to this environment: CI's deploy of a merge (its first environment), a promotion from the
 * environment before, a person's approval there, or a person's manual deploy.
 */
export type DeployType = 'ci' | 'promotion' | 'approved' | 'manual';

export interface BumpRequest extends EnvironmentStep {
  /** Automatic deploys stop at `automatic_deploys_enabled: false`; manual ones do not. */
  respectFreeze: boolean;
  /** Why we roll back, for the charts commit message. */
  reason?: string;
  /** Absent from bumps scheduled by workers before 1.2: `respectFreeze` tells automatic deploys from a person's. */
  deployType?: DeployType;
}

/**
 * What GOV.UK's update-image-tag writes as `promote_deployment`, for apps promoted by their charts flags: true
 * for a release's deploy (GitHub's release event) and its promotions, false where a person deployed (manual
 * deploys are never promoted, and neither is what a person let in) and for a rollback, which is an old tag
 * deployed again. Undefined, the flag untouched, for apps whose catalogue decides promotion.
 */
function promoteDeploymentFor(app: Pick<AppConfig, 'promotion'>, step: Pick<BumpRequest, 'purpose' | 'respectFreeze' | 'deployType'>): boolean | undefined {
  if (app.promotion !== 'chartsFlags') return undefined;
  if (step.purpose === 'rollback') return false;
  const type = step.deployType ?? (step.respectFreeze ? 'promotion' : 'manual');
  return type === 'ci' || type === 'promotion';
}

/** `reason`: why automatic deploys are off when the file's flag says neither true nor false. */
export type BumpOutcome = ({ frozen: false } & ImageTagChange) | { frozen: true; path: string; reason?: string };

export interface DeployedRelease {
  /** What the environment's image-tag file holds now. */
  tag?: string;
  /** The commit that tag was built from, when known. */
  sha?: string;
  /** How our commit relates to it: `ahead` means ours is newer. */
  relation: CompareStatus | 'unknown';
}

export interface ThawRequest {
  app: string;
  environment: string;
  /** How long to wait between two looks at the file. */
  recheckIntervalMs: number;
}

/**
 * What a frozen pipeline's wait says in each heartbeat: how many looks so far, and why the last one found no thaw.
 * An attempt that takes the wait over from a dead worker counts on from here.
 */
export interface ThawProgress {
  rechecks: number;
  reason: string;
}

/** Steps 3.1 and 3.2, the charts repo: what an environment runs, whether ours is newer, and the bump itself. */
export function createChartsActivities(stage: Stage) {
  const { charts, sourceHost } = stage.deps;

  /**
   * The digest the bump stands on: the tag must still name the image the pipeline checked, where it was built and,
   * when the cache already holds the tag, where clusters pull it. A rollback's is whatever its tag names (empty
   * when that image is gone: the tag alone decides then). Undefined when there is nothing to check or write.
   */
  async function digestForBump(app: AppConfig, step: BumpRequest, tag: string): Promise<string | undefined> {
    if (step.digest === undefined && !app.image.writeDigest) return undefined;
    const { built, cache } = app.image;
    const now = await stage.registryOf(built).digestOf(built.repository, tag);
    if (step.purpose === 'rollback') return now ?? '';
    const changed = (where: string, found: string | undefined) =>
      permanent(
        FailureTypes.ImageDigestChanged,
        `${where} ${found ? `now names ${found}` : 'names no image now'}, not ${step.digest}, the image this pipeline checked: ` +
          `refusing to deploy a build it did not check (was the tag pushed over?); nothing was changed in ${step.environment}`,
      );
    if (step.digest !== undefined && now !== step.digest) throw changed(`${built.repository}:${tag}`, now);
    if (step.digest !== undefined && cache) {
      const cached = await stage.registryOf(cache).digestOf(cache.repository, tag);
      if (cached !== undefined && cached !== step.digest) throw changed(`the pull-through cache's ${cache.repository}:${tag}`, cached);
    }
    if (!now) throw permanent(FailureTypes.ImageNotFound, `${built.repository}:${tag} names no image: there is no digest to write beside the tag`);
    return app.image.writeDigest ? now : undefined;
  }

  return {
    /**
     * Returns once automatic deploys to the environment are on again. A freeze may last weeks: the wait is this one
     * activity looking at the file every `recheckIntervalMs`, heartbeating, so the pipeline's history does not grow
     * with each look. A flag that is neither true nor false keeps it waiting (fail closed); so does a look that fails
     * (the charts remote unreachable for a while), which is logged and tried again at the next look.
     */
    async waitForThaw(request: ThawRequest): Promise<{ rechecks: number }> {
      return classified(async () => {
        const { app, env } = stage.target(request);
        const ctx = Context.current();
        const before = ctx.info.heartbeatDetails as Partial<ThawProgress> | undefined;
        let rechecks = typeof before?.rechecks === 'number' ? before.rechecks : 0;
        for (;;) {
          rechecks++;
          let reason: string;
          try {
            const file = await charts.readImageTag(app.name, env.name);
            if (file.automaticDeploysEnabled) return { rechecks };
            reason = file.freezeFlagProblem ?? `automatic_deploys_enabled: false in ${file.path}`;
          } catch (err) {
            reason = `could not read the freeze flag of ${app.name} in ${env.name}: ${(err as Error).message}`;
            ctx.log.warn('a look at a freeze failed; the pipeline stays frozen and looks again', { reason, rechecks });
          }
          ctx.heartbeat({ rechecks, reason } satisfies ThawProgress);
          // Context.sleep ends early with a CancelledFailure when the pipeline is cancelled.
          await ctx.sleep(request.recheckIntervalMs);
        }
      });
    },

    /** One look at the freeze flag: what pipelines started before 1.1 call between their sleeps (waitForThaw is the wait now). */
    async readFreeze(step: { app: string; environment: string }): Promise<{ frozen: boolean; reason?: string }> {
      return classified(async () => {
        const { app, env } = stage.target(step);
        const file = await charts.readImageTag(app.name, env.name);
        return { frozen: !file.automaticDeploysEnabled, ...(file.freezeFlagProblem ? { reason: file.freezeFlagProblem } : {}) };
      });
    },

    /**
     * One charts commit per environment; a retry finds the commit it already made. With the digest the pipeline
     * recorded, the tag must still name that image, or nothing is committed. Apps promoted by their charts flags
     * get `promote_deployment` in the same commit (promoteDeploymentFor), so the flag Argo CD syncs is this deploy's.
     */
    async bumpImageTag(step: BumpRequest): Promise<BumpOutcome> {
      return classified(async () => {
        const { app, env } = stage.target(step);
        const tag = validateImageTag(step.tag);
        if (step.respectFreeze) {
          const file = await charts.readImageTag(app.name, env.name);
          // Our own earlier commit may already be there (a retry); a freeze set after it does not undo it.
          if (!file.automaticDeploysEnabled && file.imageTag !== tag) {
            return { frozen: true, path: file.path, ...(file.freezeFlagProblem ? { reason: file.freezeFlagProblem } : {}) };
          }
        }
        const digest = await digestForBump(app, step, tag);
        const message =
          step.purpose === 'rollback'
            ? `Roll back ${app.name} to ${tag} in ${env.name}${step.reason ? `: ${step.reason}` : ''}`
            : `Deploy ${app.name} ${tag} to ${env.name}`;
        const change = await charts.setImageTag(app.name, env.name, tag, message.slice(0, 500), digest, promoteDeploymentFor(app, step));
        return { frozen: false, ...change };
      });
    },

    /** What the environment runs now, and whether our commit is newer (GitHub compare). */
    async compareWithDeployed(step: EnvironmentStep & { sha: string }): Promise<DeployedRelease> {
      return classified(async () => {
        const { app, env } = stage.target(step);
        const file = await charts.readImageTag(app.name, env.name);
        if (!file.imageTag) return { relation: 'unknown' };
        let deployedSha: string | undefined;
        if (isFullSha(file.imageTag)) deployedSha = file.imageTag;
        else {
          // A release tag (v3231) or short SHA in the file: GitHub knows which commit it names.
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
      return classified(() => sourceHost.compareCommits(stage.app(request.app).repo, request.base, request.head));
    },
  };
}
