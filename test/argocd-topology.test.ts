/**
 * GOV.UK's topology: each environment a cluster with its own Argo CD, where an app of apps (`app-config`) renders
 * each app's Application from the image-tag files. The Argo CD stage (waitForArgoSync) through the production
 * adapters against one simulator per cluster.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type PipelineActivities } from '../activities';
import { createArgoCdClient } from '../adapters';
import type { Catalogue } from '../common/catalogue';
import { startStack, type Stack } from '../sandbox/stack';
import { createProductionDependencies } from '../worker/adapters';
import { errorFrom } from './support/env';

const APP = 'publisher';
/** Runs in staging and production only: integration's Argo CD has never heard of it. */
const STAGING_ONLY = 'content-data-admin';

describe('an Argo CD per environment, with an app of apps', () => {
  let dataDir: string;
  let stack: Stack;
  let activities: PipelineActivities;

  async function bumped(app: string, environment: string): Promise<{ app: string; environment: string; tag: string; chartsCommit: string }> {
    const sha = await stack.merge(app);
    const outcome = (await new MockActivityEnvironment().run(activities.bumpImageTag, { app, environment, tag: sha, respectFreeze: true })) as Awaited<
      ReturnType<PipelineActivities['bumpImageTag']>
    >;
    if (outcome.frozen) throw new Error(`${environment} is frozen`);
    return { app, environment, tag: sha, chartsCommit: outcome.chartsCommit };
  }

  /** The same catalogue, but the app's environment names no app of apps: a pipeline that refreshes only the app. */
  function withoutAppOfApps(catalogue: Catalogue, app: string): Catalogue {
    const apps = new Map(catalogue.apps);
    const config = apps.get(app)!;
    apps.set(app, { ...config, environments: config.environments.map((env) => ({ ...env, argocd: { url: env.argocd.url, tokenVariable: env.argocd.tokenVariable } })) });
    return { ...catalogue, apps };
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'argocd-topology-'));
    stack = await startStack({
      dataDir,
      apps: { [APP]: {}, [STAGING_ONLY]: { environments: { staging: {}, production: {} } } },
      // Argo CD's own poll: three minutes, far longer than any wait below.
      argo: { perEnvironment: true, appOfApps: 'app-config' },
      polling: { initialIntervalMs: 20, maxIntervalMs: 100 },
    });
    activities = createActivities(stack.dependencies);
  });
  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("gives each environment its own Argo CD, knowing only its own cluster's applications", async () => {
    const urls = ['integration', 'staging', 'production'].map((env) => stack.argoOf(env).url);
    expect(new Set(urls).size).toBe(3);
    expect(stack.catalogue.apps.get(APP)!.environments.map((env) => env.argocd)).toEqual(
      ['integration', 'staging', 'production'].map((env) => ({ url: stack.argoOf(env).url, tokenVariable: `ARGOCD_TOKEN_${env.toUpperCase()}`, appOfApps: 'app-config' })),
    );
    const integration = createArgoCdClient({ url: stack.argoOf('integration').url, token: stack.env.ARGOCD_TOKEN_INTEGRATION! });
    await expect(integration.getApplication(APP)).resolves.toMatchObject({ name: APP, syncStatus: 'Synced', healthStatus: 'Healthy' });
    await expect(integration.getApplication(STAGING_ONLY)).rejects.toThrow(/404/);
    // One cluster's token opens no other cluster's Argo CD.
    const stagingTokenAtIntegration = createArgoCdClient({ url: stack.argoOf('integration').url, token: stack.env.ARGOCD_TOKEN_STAGING! });
    await expect(stagingTokenAtIntegration.getApplication(APP)).rejects.toThrow(/401/);
  });

  it("waits in the environment's own Argo CD: app-config refreshed and Synced at our commit, then the app running our image", async () => {
    const target = await bumped(APP, 'staging');
    for (const env of ['integration', 'staging', 'production']) stack.argoOf(env).clearRequests();
    await expect(new MockActivityEnvironment().run(activities.waitForArgoSync, target)).resolves.toEqual({ revision: target.chartsCommit, health: 'Healthy' });

    const staging = stack.argoOf('staging');
    expect(staging.requests[0]!.url).toMatch(/\/api\/v1\/applications\/app-config\?refresh=normal$/);
    expect(staging.requests.some((request) => request.url.includes(`/applications/${APP}`))).toBe(true);
    expect(stack.argoOf('integration').requests).toHaveLength(0);
    expect(stack.argoOf('production').requests).toHaveLength(0);

    const application = staging.application(APP);
    expect(application.status.summary.images).toEqual([`${APP}:${target.tag}`]);
    expect(application.metadata).toMatchObject({ annotations: { imageTag: target.tag, promoteDeployment: 'true', automaticDeploysEnabled: 'true' } });
    expect(staging.application('app-config').status.sync).toMatchObject({ status: 'Synced', revision: target.chartsCommit });
    expect(stack.argoOf('integration').currentTag(APP, 'integration')).not.toBe(target.tag);
  });

  it("a pipeline that refreshed only the app's Application would wait for app-config's next poll", async () => {
    const target = await bumped(APP, 'integration');
    const childOnly = createActivities({ ...stack.dependencies, catalogue: withoutAppOfApps(stack.catalogue, APP) });
    const integration = stack.argoOf('integration');
    let finished = false;
    const waiting = new MockActivityEnvironment().run(childOnly.waitForArgoSync, target).then((result) => {
      finished = true;
      return result;
    });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    // Refreshed, the app is Synced at our charts commit, yet still runs the old image: app-config has not rendered our tag.
    expect(finished).toBe(false);
    expect(integration.application(APP).status.sync).toMatchObject({ status: 'Synced', revision: target.chartsCommit });
    expect(integration.application(APP).status.summary.images).not.toContain(`${APP}:${target.tag}`);

    await integration.refresh(); // app-config's poll tick, three minutes after the last one in a real cluster
    await expect(waiting).resolves.toEqual({ revision: target.chartsCommit, health: 'Healthy' });
    expect(integration.currentTag(APP, 'integration')).toBe(target.tag);
  });

  it("a catalogue pointing an environment at another cluster's Argo CD fails for good, saying which Argo CD was asked", async () => {
    const target = await bumped(STAGING_ONLY, 'staging');
    const integrationUrl = stack.argoOf('integration').url;
    const apps = new Map(stack.catalogue.apps);
    const config = apps.get(STAGING_ONLY)!;
    const wrong = { url: integrationUrl, tokenVariable: 'ARGOCD_TOKEN_INTEGRATION', appOfApps: 'app-config' };
    apps.set(STAGING_ONLY, { ...config, environments: config.environments.map((env) => (env.name === 'staging' ? { ...env, argocd: wrong } : env)) });
    const catalogue = { ...stack.catalogue, apps };
    const misrouted = createActivities(createProductionDependencies(stack.settings, catalogue, stack.env));
    const err = await errorFrom(() => new MockActivityEnvironment().run(misrouted.waitForArgoSync, target));
    expect(err).toMatchObject({ nonRetryable: true });
    expect(err.message).toContain(`the Argo CD at ${integrationUrl} has no application ${STAGING_ONLY}`);
    expect(err.message).toContain("each environment's cluster has its own Argo CD");
  });

  it('app-config polls the charts repo by itself, at the interval it is given', async () => {
    const polling = await startStack({
      dataDir: join(dataDir, 'polling'),
      apps: { [APP]: { environments: { integration: {} } } },
      argo: { perEnvironment: true, appOfApps: 'app-config', pollIntervalMs: 300 },
    });
    try {
      const sha = await polling.merge(APP);
      await polling.charts.commitFiles({ [`charts/app-config/image-tags/integration/${APP}`]: `image_tag: ${sha}\n` }, 'bump');
      const deadline = Date.now() + 5_000;
      while (polling.argoOf('integration').currentTag(APP, 'integration') !== sha && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(polling.argoOf('integration').currentTag(APP, 'integration')).toBe(sha);
      expect(polling.argoOf('integration').application(APP).metadata).toMatchObject({ annotations: { promoteDeployment: 'false', automaticDeploysEnabled: 'false' } });
    } finally {
      await polling.close();
    }
  });
});
