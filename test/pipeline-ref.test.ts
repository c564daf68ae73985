/**
 * One path for a ref: the client resolves it to a commit once, and the pipeline deploys the commit its workflow ID
 * names, even when the branch moves between the client's lookup and the pipeline's start.
 */
import { startPipeline } from '../client/pipelines';
import type { SourceHost } from '../common/ports';
import { readFileAt } from './support/charts-repo';
import { startHarness, type PipelineHarness } from './support/pipeline';

const APP = 'content-store';

describe('a ref is resolved once, by the client', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({ apps: { [APP]: {} } });
  });
  afterAll(async () => h?.close());

  it('a branch that moves right after the lookup: the pipeline deploys the commit its ID names', async () => {
    await h.stack.merge(APP);
    const looked = await h.stack.merge(APP, { branch: 'hotfix-moving' });
    const real = h.stack.dependencies.sourceHost;
    let movedTo: string | undefined;
    // GitHub answers, then someone pushes to the branch before the pipeline starts.
    const movingHost: SourceHost = {
      ...real,
      async resolveRef(repo, ref) {
        const sha = await real.resolveRef(repo, ref);
        movedTo = await h.stack.merge(APP, { branch: 'hotfix-moving' });
        return sha;
      },
    };

    const started = await startPipeline(
      { app: APP, ref: 'hotfix-moving', environment: 'staging', requestedBy: 'alice', allowUnmerged: true },
      { client: h.client, taskQueue: h.taskQueue, catalogue: h.stack.catalogue, sourceHost: movingHost },
    );
    expect(movedTo).toBeDefined();
    expect(movedTo).not.toBe(looked);
    expect(h.stack.github.branchTip(h.stack.repoOf(APP), 'hotfix-moving')).toBe(movedTo);
    expect(started).toMatchObject({ workflowId: `deploy-${APP}-${looked}-staging-manual`, sha: looked, started: true });

    const result = await h.handle(started.workflowId).result();
    expect(result).toMatchObject({ status: 'SUCCEEDED', ref: 'hotfix-moving', sha: looked, tag: looked });
    const staging = result.environments.find((env) => env.environment === 'staging')!;
    expect(staging).toMatchObject({ state: 'DEPLOYED', tag: looked });
    const file = `charts/app-config/image-tags/staging/${APP}`;
    expect(await readFileAt(h.stack.charts.bareDir, staging.chartsCommit!, file)).toContain(`image_tag: ${looked}`);
    expect(await readFileAt(h.stack.charts.bareDir, 'main', file)).toContain(`image_tag: ${looked}`);
    expect(h.stack.release.deployments.filter((d) => d.repo === h.stack.repoOf(APP)).map((d) => [d.environment, d.version])).toEqual([['staging', looked]]);
    expect(h.stack.argo.currentTag(APP, 'staging')).toBe(looked);

    // After the client, the pipeline looked up the commit, never the branch.
    const commitReads = (ref: string) => h.stack.github.requests.filter((r) => r.method === 'GET' && r.path === `/repos/${h.stack.repoOf(APP)}/commits/${ref}`);
    expect(commitReads('hotfix-moving')).toHaveLength(1);
    expect(commitReads(looked).length).toBeGreaterThanOrEqual(1);
    expect(commitReads(movedTo!)).toHaveLength(0);
  });

  it('a full SHA needs no lookup by the client; the input carries it as both ref and sha', async () => {
    const sha = await h.stack.merge(APP);
    const started = await h.startCi(APP, sha);
    expect(started).toMatchObject({ workflowId: `deploy-${APP}-${sha}`, sha, started: true });
    const history = await h.handle(started.workflowId).fetchHistory();
    const input = JSON.parse(Buffer.from(history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!.data!).toString());
    expect(input).toMatchObject({ app: APP, ref: sha, sha, trigger: 'ci' });
    // Integration deploys; the manual deploy above holds staging, so it goes no further here.
    await h.waitForStatus(started.workflowId, (s) => s.environments.some((env) => env.environment === 'integration' && env.state === 'DEPLOYED'), 'integration deployed');
    expect(await h.status(started.workflowId)).toMatchObject({ ref: sha, sha, tag: sha });
    await h.handle(started.workflowId).cancel();
  });
});
