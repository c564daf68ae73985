import { ApplicationFailure, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import type { EnvironmentStatus, PipelineInput, PipelineStatus } from '../common/types';
import { FailureTypes } from '../common/types';
import { APPROVE_SIGNAL_DESCRIPTION, ApprovalGate, REJECT_SIGNAL_DESCRIPTION } from './approval-gate';
import { approveSignal, approveUpdate, rejectSignal, rejectUpdate, statusQuery } from './definitions';
import { compareWithDeployed, deployEnvironment, divergedReason } from './environment-deploy';
import { inputRefusal } from './input-checks';
import { admitManualDeploy } from './manual-start';
import { laneGrantedSignal, laneHolderCheckSignal, laneWaitingSignal, newerDeployedSignal, newerFollowsSignal } from './lane-protocol';
import type { PipelineContext } from './pipeline-context';
import { endPipeline } from './pipeline-ending';
import { PipelineLanes } from './pipeline-lanes';
import { PipelineState } from './pipeline-state';
import { Reports } from './reports';
import { Steps } from './steps';

/** 1.1: manual deploys pass who-may-deploy, unmerged-ref and approval gates (1.0 ones started at once). */
const MANUAL_DEPLOY_GATES = 'manual-deploy-gates';

/** 1.1: apps promoted by their charts flags go on only where the deployed environment's file said so at sync. */
const PROMOTION_BY_CHARTS_FLAGS = 'promotion-by-charts-flags';

const FROM_THE_LANE = { description: 'Internal: sent by the deploy lane. Do not send by hand.' };

/**
 * One commit's way through its environments: resolve the release, make sure its image exists, then for each
 * environment pass its approval gate (all but the first, unless continuous) and deploy it.
 */
export async function DeployPipeline(input: PipelineInput): Promise<PipelineStatus> {
  const refused = inputRefusal(input, Boolean(workflowInfo().continuedFromExecutionRunId));
  if (refused) throw ApplicationFailure.create({ type: FailureTypes.InvalidInput, message: refused, nonRetryable: true });
  const pipeline = new PipelineState(input, workflowInfo().workflowId);
  const steps = new Steps();
  const lanes = new PipelineLanes(pipeline, steps, input);
  const ctx: PipelineContext = { input, pipeline, steps, lanes, reports: new Reports(pipeline, steps) };
  const gate = new ApprovalGate(ctx);

  setHandler(statusQuery, () => pipeline.status);
  setHandler(approveUpdate, (request) => gate.decide(request, 'approved'), { validator: (request) => gate.validate(request, 'approved') });
  setHandler(rejectUpdate, (request) => gate.decide(request, 'rejected'), { validator: (request) => gate.validate(request, 'rejected') });
  setHandler(approveSignal, (request) => gate.decideBySignal(request, 'approved'), { description: APPROVE_SIGNAL_DESCRIPTION });
  setHandler(rejectSignal, (request) => gate.decideBySignal(request, 'rejected'), { description: REJECT_SIGNAL_DESCRIPTION });
  setHandler(laneGrantedSignal, (grant) => lanes.granted(grant), FROM_THE_LANE);
  setHandler(laneWaitingSignal, ({ environment, reason }) => pipeline.waitingForLane(environment, reason), FROM_THE_LANE);
  setHandler(laneHolderCheckSignal, ({ environment }) => lanes.holderChecked(environment), FROM_THE_LANE);
  setHandler(newerFollowsSignal, (news) => lanes.newerFollows(news), FROM_THE_LANE);
  setHandler(
    newerDeployedSignal,
    (news) => {
      gate.newerDeployed(news);
      lanes.newerDeployed(news);
    },
    FROM_THE_LANE,
  );

  // A pipeline that waited long continues in a new run from where it stood (see environment-deploy.ts).
  const resume = workflowInfo().continuedFromExecutionRunId ? input.resume : undefined;
  pipeline.publish();
  try {
    const plan = resume?.plan ?? (await steps.calls.resolveRelease.executeWithOptions({ summary: `Resolve ${input.app} ${input.ref}` }, [input]));
    steps.usePlan(plan);
    if (resume) pipeline.resumed(resume);
    else pipeline.planned(plan);

    if (!resume) await ensureImage(ctx);

    for (const [index, envPlan] of plan.environments.entries()) {
      if (resume && index < resume.environmentIndex) continue;
      const env = pipeline.status.environments[index]!;
      // A newer commit that followed us through the last environment may be on its way here (lane-follow.ts).
      if (index > 0) await lanes.yieldToNewer(env);
      const byFlags = index > 0 && index !== resume?.environmentIndex ? promotionByChartsFlags(ctx, index) : undefined;
      if (byFlags?.notPromoted && plan.unpromoted === 'deployByHand') {
        env.waitingFor = `next environment: deploy by hand (${byFlags.notPromoted})`;
        break;
      }
      const gated = byFlags ? byFlags.notPromoted !== undefined : index > 0 && !envPlan.continuousDeployment && index !== resume?.environmentIndex;
      if (gated) await gate.pass(env, byFlags?.notPromoted ?? (await divergence(ctx, env)));
      if (input.trigger === 'manual' && index !== resume?.environmentIndex && patched(MANUAL_DEPLOY_GATES)) await admitManualDeploy(ctx, gate, envPlan, env);
      while ((await deployEnvironment(ctx, envPlan, env, index)) === 'needs a person') await gate.pass(env, env.waitingFor);
    }
    pipeline.setStatus('SUCCEEDED');
    return pipeline.status;
  } catch (err) {
    return await endPipeline(ctx, err);
  }
}

/**
 * GOV.UK's rule, for apps that choose it: a release deployed to the previous environment (Synced, Healthy, smoke
 * tests passed) goes on here on its own only when that environment's file said promote_deployment: true and
 * automatic_deploys_enabled: true at the commit Argo CD synced. Undefined where the catalogue's rule applies.
 */
function promotionByChartsFlags({ input, pipeline }: PipelineContext, index: number): { notPromoted?: string } | undefined {
  if (pipeline.plan!.promotion !== 'chartsFlags' || input.trigger !== 'ci' || !patched(PROMOTION_BY_CHARTS_FLAGS)) return undefined;
  const previous = pipeline.status.environments[index - 1]!;
  if (previous.promotes) return {};
  const why = previous.promotes === false ? 'does not say both promote_deployment: true and automatic_deploys_enabled: true' : 'was not synced by this pipeline';
  return { notPromoted: `${previous.environment} does not promote on its own: its image-tag file ${why}` };
}

/** What the approver must know beyond the usual: the environment runs commits this release would drop. */
async function divergence(ctx: PipelineContext, env: EnvironmentStatus): Promise<string | undefined> {
  const { sha, onDivergence } = ctx.pipeline.plan!;
  if (ctx.input.trigger !== 'ci' || onDivergence === 'deploy') return undefined;
  const deployed = await compareWithDeployed(ctx, env.environment);
  return deployed.relation === 'diverged' ? divergedReason(env, deployed.tag, sha) : undefined;
}

/**
 * The release's image, built first when its registry does not have it; its digest is recorded (pipelines started
 * before 1.1 learnt only that it exists), and every bump checks the tag still names that image.
 */
async function ensureImage({ pipeline, steps }: PipelineContext): Promise<void> {
  const { app, sha, tag, buildTimeoutMs } = pipeline.plan!;
  const found = await steps.calls.imageExists.executeWithOptions({ summary: `Look for image ${tag}` }, [app, tag]);
  if (found) return recordDigest(pipeline, found);
  pipeline.setStatus('BUILDING');
  const request = { app, sha, tag };
  await steps.calls.dispatchImageBuild.executeWithOptions({ summary: `Build image ${tag}` }, [request]);
  recordDigest(pipeline, await steps.waits.waitForImage.executeWithOptions({ summary: `Wait for image ${tag}`, scheduleToCloseTimeout: buildTimeoutMs }, [request]));
}

function recordDigest(pipeline: PipelineContext['pipeline'], found: string | boolean | undefined | void): void {
  if (typeof found !== 'string') return;
  pipeline.status.imageDigest = found;
  pipeline.publish();
}
