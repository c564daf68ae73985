/**
 * The deploy of one environment: the deploy window, the lane, the no-regression check, the bump, the side steps,
 * Argo CD's sync, the smoke tests, and the rollback when the release turns out bad there.
 */
import { ActivityCancellationType, ApplicationFailure, log, type ActivityOptions } from '@temporalio/workflow';
import { shortSha } from '../common/names';
import type { DeployType } from '../activities/charts';
import type { EnvironmentPlan, EnvironmentStatus } from '../common/types';
import { FailureTypes } from '../common/types';
import { allSettledThenThrow, describeFailure, PipelineEnded, rollbackCause, unverifiedAfterBump } from './failures';
import { awaitDeployWindow, msUntilWindow } from './deploy-window';
import { waitForThaw } from './long-waits';
import type { PipelineContext } from './pipeline-context';

/**
 * Deployed, or `needs a person`: the environment runs a commit that is neither older nor newer than ours (a hotfix
 * deployed by hand, say), and deploying would drop its commits; nobody has approved that here yet.
 */
export type EnvironmentOutcome = 'deployed' | 'needs a person';

/** Waits for the deploy window (automatic deploys), takes the lane, deploys; a freeze sends it back to wait. */
export async function deployEnvironment(ctx: PipelineContext, envPlan: EnvironmentPlan, env: EnvironmentStatus, index: number): Promise<EnvironmentOutcome> {
  const automatic = ctx.input.trigger === 'ci';
  for (;;) {
    if (automatic && envPlan.hasDeployWindows) await awaitDeployWindow(ctx, env);
    await ctx.lanes.take(env, index);
    let frozen: Freeze | undefined;
    try {
      // Waiting for the lane can outlast the window: a deploy starts only inside one.
      if (automatic && envPlan.hasDeployWindows && (await msUntilWindow(ctx, env)) > 0) continue;
      if (automatic) {
        const there = await alreadyThere(ctx, env);
        if (there === 'identical') return 'deployed';
        if (there === 'diverged' && !env.approval) return 'needs a person';
      }
      frozen = await deploy(ctx, envPlan, env, automatic, deployTypeOf(ctx, env, index));
      if (frozen === undefined) return 'deployed';
    } finally {
      await ctx.lanes.release(env.environment);
    }
    env.waitingFor = frozen.reason ?? `automatic deploys to ${env.environment} are turned off (automatic_deploys_enabled: false in ${frozen.path})`;
    ctx.pipeline.setStatus('FROZEN', env, 'FROZEN');
    await waitForThaw(ctx, env, index);
  }
}

/** What the environment runs, and how our commit relates to it (GitHub compare). */
export function compareWithDeployed({ pipeline, steps }: Pick<PipelineContext, 'pipeline' | 'steps'>, environment: string, summary = `Compare with what ${environment} runs`) {
  const { app, tag, sha } = pipeline.plan!;
  return steps.recorded.compareWithDeployed.executeWithOptions({ summary }, [{ app, environment, tag, sha }]);
}

export function divergedReason(env: EnvironmentStatus, deployedTag: string | undefined, sha: string): string {
  return `${env.environment} runs ${deployedTag}, which has commits ${shortSha(sha)} lacks: deploying would drop them; approve to deploy anyway`;
}

/**
 * Never move an environment backwards or sideways: `identical` when it already runs this commit; a newer one
 * there supersedes us; `diverged` (with the reason in the environment's status) when it runs a commit our
 * release lacks.
 */
async function alreadyThere(ctx: PipelineContext, env: EnvironmentStatus): Promise<'identical' | 'diverged' | 'deploy'> {
  const { pipeline } = ctx;
  const release = pipeline.plan!;
  const deployed = await compareWithDeployed(ctx, env.environment);
  if (deployed.relation === 'behind') {
    env.state = 'SUPERSEDED';
    // The lane names the pipeline that deployed what runs there, when it was one of ours.
    const by = ctx.lanes.lastDeployedTo(env.environment);
    env.waitingFor =
      by && by.sha === deployed.sha
        ? `superseded by ${shortSha(by.sha)} (${by.pipelineId}), already deployed to ${env.environment}`
        : `${env.environment} already runs ${deployed.tag}, newer than ${shortSha(release.sha)}`;
    throw new PipelineEnded('SUPERSEDED', env.waitingFor);
  }
  if (deployed.relation === 'diverged' && release.onDivergence === 'wait') {
    env.waitingFor = divergedReason(env, deployed.tag, release.sha);
    return 'diverged';
  }
  if (deployed.relation !== 'identical') return 'deploy';
  env.state = 'DEPLOYED';
  env.waitingFor = undefined;
  env.finishedAt = new Date().toISOString();
  pipeline.publish();
  return 'identical';
}

/** The image-tag file that stopped an automatic deploy, and why, when its flag could not be read. */
interface Freeze {
  path: string;
  reason?: string;
}

/** What the bump tells the charts (GOV.UK's promote_deployment): once a person steps in, the release is theirs. */
function deployTypeOf({ input }: PipelineContext, env: EnvironmentStatus, index: number): DeployType {
  if (input.trigger === 'manual') return 'manual';
  if (env.approval) return 'approved';
  return index === 0 ? 'ci' : 'promotion';
}

/** Bump, side steps, sync, smoke tests, while holding the lane. Returns the freeze that stopped it, if one did. */
async function deploy(ctx: PipelineContext, envPlan: EnvironmentPlan, env: EnvironmentStatus, automatic: boolean, deployType: DeployType): Promise<Freeze | undefined> {
  const { input, pipeline, steps, reports, lanes } = ctx;
  const release = pipeline.plan!;
  const step = { app: release.app, environment: envPlan.name, tag: release.tag };
  // The bump refuses a tag that names another image by now; the deployed-to tag goes on the one checked.
  const checked = pipeline.status.imageDigest ? { ...step, digest: pipeline.status.imageDigest } : step;
  const where = `${release.app} ${release.tag} to ${envPlan.name}`;
  env.startedAt ??= new Date().toISOString();
  pipeline.setStatus('DEPLOYING', env, 'DEPLOYING');
  const change = await steps.calls.bumpImageTag.executeWithOptions({ summary: `Bump image tag: ${where}` }, [{ ...checked, respectFreeze: automatic, deployType }]);
  if (change.frozen) return { path: change.path, reason: change.reason };
  env.chartsCommit = change.chartsCommit;
  env.previousTag = change.previousTag;
  pipeline.publish();
  // Steps that do not depend on one another run side by side: each server round trip saved is a few tens of
  // milliseconds per environment.
  await allSettledThenThrow([
    reports.reportDeployment(envPlan.name, 'in_progress', `deploying ${release.tag}`),
    steps.calls.tagImage.executeWithOptions({ summary: `Tag image deployed-to-${envPlan.name}` }, [checked]),
    steps.calls.notifyReleaseApp.executeWithOptions({ summary: `Tell the release app: ${where}` }, [step]),
  ]);

  try {
    pipeline.setStatus('WAITING_FOR_SYNC', env, 'WAITING_FOR_SYNC');
    const synced = await waitForSync(ctx, envPlan, change.chartsCommit, release.tag);
    if (synced.promotes !== undefined) env.promotes = synced.promotes;
    pipeline.setStatus('SMOKE_TESTING', env, 'SMOKE_TESTING');
    await steps.waits.runSmokeTests.executeWithOptions({ summary: `Smoke test ${where}`, ...smokeTestOptions(envPlan) }, [step]);
  } catch (err) {
    const cause = rollbackCause(err, release, envPlan.name);
    if (cause && env.previousTag && env.previousTag !== release.tag) await rollBack(ctx, envPlan, env, cause);
    // Our tag is in the charts, and Argo CD cannot say how the cluster took it: no automatic deploy here until a person looks.
    if (unverifiedAfterBump(err)) {
      const why = describeFailure(err, release, envPlan.name).message;
      await lanes.hold(envPlan.name, { reason: `${release.tag} is in the charts but unverified: ${why}`, setBy: 'deploy pipeline', setAt: new Date().toISOString(), kind: 'safety' });
    }
    throw err;
  }
  env.finishedAt = new Date().toISOString();
  pipeline.setStatus('DEPLOYING', env, 'DEPLOYED');
  const reported = reports.reportDeployment(envPlan.name, 'success', `${release.tag} is Synced, Healthy and passed its smoke tests`);
  const toldLane = (async () => {
    if (!automatic) {
      const setBy = input.requestedBy ?? 'manual deploy';
      await lanes.hold(envPlan.name, { reason: `manual deploy of ${input.ref} (${shortSha(release.sha)})`, setBy, setAt: env.finishedAt!, kind: 'manual-deploy' });
    }
    // The lane's release carries the news of our deploy to pipelines waiting for approval there.
    await lanes.release(envPlan.name, { pipelineId: pipeline.workflowId, sha: release.sha });
  })();
  await allSettledThenThrow([reported, toldLane]);
  return undefined;
}

/**
 * End-to-end suites may take longer than HTTP checks, and a cancelled pipeline waits until the step has stopped
 * its suite. Only plans resolved since suites exist say so: older pipelines keep 30 minutes and do not wait.
 */
function smokeTestOptions(envPlan: EnvironmentPlan): ActivityOptions {
  if (!envPlan.smokeTestsTimeoutMs) return { startToCloseTimeout: '30 minutes' };
  return {
    startToCloseTimeout: envPlan.smokeTestsTimeoutMs,
    scheduleToCloseTimeout: 2 * envPlan.smokeTestsTimeoutMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  };
}

async function waitForSync({ pipeline, steps }: PipelineContext, envPlan: EnvironmentPlan, chartsCommit: string, tag: string) {
  return steps.waits.waitForArgoSync.executeWithOptions(
    { summary: `Wait for Argo CD: ${envPlan.name} at charts ${shortSha(chartsCommit)}`, scheduleToCloseTimeout: envPlan.syncTimeoutMs },
    [{ app: pipeline.plan!.app, environment: envPlan.name, tag, chartsCommit }],
  );
}

/** Put back the tag the environment ran, wait for it, and hold automatic deploys here. */
async function rollBack(ctx: PipelineContext, envPlan: EnvironmentPlan, env: EnvironmentStatus, reason: string): Promise<never> {
  const { pipeline, steps, lanes } = ctx;
  const release = pipeline.plan!;
  const previousTag = env.previousTag!;
  const step = { app: release.app, environment: envPlan.name, tag: previousTag, purpose: 'rollback' as const };
  pipeline.rolledBack = true;
  env.error = reason;
  pipeline.setStatus('DEPLOYING', env, 'ROLLING_BACK');
  const revert = await steps.calls.bumpImageTag.executeWithOptions({ summary: `Roll back ${envPlan.name} to ${previousTag}` }, [
    { ...step, respectFreeze: false, reason: `${release.tag} failed` },
  ]);
  if (revert.frozen) throw new Error('a rollback never stops at a freeze');
  await steps.calls.tagImage.executeWithOptions({ summary: `Tag image ${previousTag} deployed-to-${envPlan.name}` }, [step]).catch((err: unknown) => {
    // The old image may be gone from ECR; the charts revert is what puts it back in the cluster.
    log.warn('could not move the deployed-to tag back', { error: (err as Error).message });
  });
  await steps.calls.notifyReleaseApp.executeWithOptions({ summary: `Tell the release app: ${envPlan.name} back on ${previousTag}` }, [step]);
  await lanes.hold(envPlan.name, { reason: `rolled back from ${release.tag}: ${reason}`, setBy: 'deploy pipeline', setAt: new Date().toISOString(), kind: 'safety' });
  await waitForSync(ctx, envPlan, revert.chartsCommit, previousTag);
  env.state = 'ROLLED_BACK';
  env.finishedAt = new Date().toISOString();
  throw ApplicationFailure.create({
    type: FailureTypes.RolledBack,
    message: `${reason}; rolled ${envPlan.name} back to ${previousTag} and put a hold on automatic deploys there`,
    nonRetryable: true,
  });
}
