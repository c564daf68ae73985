import type { AppConfig } from '../common/catalogue';
import { isFullSha, shortSha, validateGitRef, validateImageTag } from '../common/names';
import { smokeTestsBudgetMs } from '../common/smoke-suites';
import { FailureTypes, type PipelineInput, type ReleasePlan } from '../common/types';
import { permanent, withinAttempts, type Stage } from './stage';

/**
 * Step 1, resolve: check the input against the catalogue and fix the commit, its image tag and the environments.
 * The client resolved the ref to a commit once, and the workflow ID names that commit; this step only checks that
 * the commit is the app's, so a branch that moves after the client looked cannot change what is deployed.
 */
export function createResolveActivities(stage: Stage) {
  const { catalogue, sourceHost } = stage.deps;

  async function checkedCommit(app: AppConfig, input: PipelineInput): Promise<string> {
    const { sha } = input as { sha?: unknown };
    if (sha === undefined || sha === null || sha === '') {
      throw permanent(
        FailureTypes.InvalidInput,
        `the pipeline's input names no commit: "sha" must be the full commit SHA the client resolved "${input.ref}" to (deploy start sets it)`,
      );
    }
    if (typeof sha !== 'string' || !isFullSha(sha)) {
      const shown = typeof sha === 'string' ? JSON.stringify(sha.length > 60 ? `${sha.slice(0, 60)}…` : sha) : `a ${typeof sha}`;
      throw permanent(FailureTypes.InvalidInput, `invalid commit SHA ${shown}: "sha" is a full commit SHA, 40 lower-case hexadecimal characters`);
    }
    if (isFullSha(input.ref) && input.ref !== sha) {
      throw permanent(FailureTypes.InvalidInput, `the input's ref is commit ${input.ref} but its sha is ${sha}: they must name the same commit`);
    }
    if (!(await sourceHost.hasCommit(app.repo, sha))) {
      const from = input.ref === sha ? '' : ` (what "${input.ref}" was resolved to)`;
      throw permanent(FailureTypes.RefNotFound, `GitHub repository ${app.repo} has no commit ${sha}${from}`);
    }
    return sha;
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

  return {
    async resolveRelease(input: PipelineInput): Promise<ReleasePlan> {
      return withinAttempts(catalogue.stepRetry.maximumAttempts, async () => {
        const app = stage.app(input.app);
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
        const environments = input.environment ? [stage.environment(app, input.environment)] : app.environments;
        const sha = await checkedCommit(app, input);
        const tag = await imageTagFor(app, sha);
        const selfApprovalMatters = environments.some((env) => env.needsApproval && !env.allowSelfApproval);
        const authorLogin = selfApprovalMatters ? await sourceHost.commitAuthor(app.repo, sha) : undefined;
        // On the main branch: the commit is the branch's tip or behind it.
        const onMainBranch = input.trigger === 'manual' ? ['identical', 'behind'].includes(await sourceHost.compareCommits(app.repo, app.mainBranch, sha)) : undefined;
        return {
          app: app.name,
          repo: app.repo,
          sha,
          tag,
          approvalTimeoutMs: app.approvalTimeoutMs,
          buildTimeoutMs: app.build.timeoutMs,
          authorLogin,
          freezeRecheckIntervalMs: catalogue.freezeRecheckIntervalMs,
          laneRecheckIntervalMs: catalogue.laneRecheckIntervalMs,
          historyLimit: catalogue.historyLimit,
          onDivergence: app.onDivergence,
          queue: app.queue,
          ...(onMainBranch !== undefined ? { onMainBranch, mainBranch: app.mainBranch } : {}),
          stepRetry: catalogue.stepRetry,
          ...(app.promotion === 'chartsFlags' ? { promotion: 'chartsFlags' as const, unpromoted: app.unpromoted } : {}),
          environments: environments.map((env) => ({
            name: env.name,
            continuousDeployment: input.trigger === 'ci' && env.continuousDeployment,
            needsApproval: env.needsApproval,
            approvers: env.approvers,
            allowSelfApproval: env.allowSelfApproval,
            identity: env.identity,
            deployers: env.deployers,
            hasDeployWindows: env.deployWindows.length > 0,
            syncTimeoutMs: env.syncTimeoutMs,
            ...(env.smokeSuites.length > 0 ? { smokeTestsTimeoutMs: smokeTestsBudgetMs(env) } : {}),
          })),
        };
      });
    },
  };
}
