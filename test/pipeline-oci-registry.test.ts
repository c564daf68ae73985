/**
 * Pipelines of an app whose images are built to an OCI registry and pulled by the clusters through a pull-through
 * cache: two CNCF Distribution registries, the first with token authentication (as GitHub's registry and Docker
 * Hub use it), the second a proxy of the first. The pipeline looks for images, and records their digests, where
 * they are built; it tags them deployed where the team looks; and it refuses a tag pushed over after its check.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createOciImageRegistry } from '../adapters/oci-registry';
import { startDistributionRegistry, type RunningRegistry } from '../harness/distribution-registry';
import { pushOciImage } from '../simulators/oci-images';
import { RegistryTokenSimulator } from '../simulators/registry-token';
import { failureOf, startHarness, type PipelineHarness } from './support/pipeline';

const SERVICE = 'test-registry';
const CI_PASSWORD = `ci-${randomBytes(12).toString('hex')}`;
const DEPLOYER_PASSWORD = `deployer-${randomBytes(12).toString('hex')}`;
const CACHE_PASSWORD = `cache-${randomBytes(12).toString('hex')}`;
const APP = 'frontend';
const GATED = 'gated';

let dir: string;
let tokens: RegistryTokenSimulator;
let upstream: RunningRegistry;
let cache: RunningRegistry;
let h: PipelineHarness;

/** A bearer token for CI's pushes, as `docker login` gets one. */
async function ciAuthorization(repository: string): Promise<string> {
  const url = new URL(tokens.realm);
  url.searchParams.set('service', SERVICE);
  url.searchParams.set('scope', `repository:${repository}:pull,push`);
  const answer = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(`ci:${CI_PASSWORD}`).toString('base64')}` } });
  return `Bearer ${((await answer.json()) as { token: string }).token}`;
}

/** The repositories the cache has stored: what it has been asked to pull so far. */
async function cachedRepositories(): Promise<string[]> {
  const answer = await fetch(`${cache.url}/v2/_catalog`);
  return ((await answer.json()) as { repositories?: string[] }).repositories ?? [];
}

const upstreamImages = () => createOciImageRegistry({ url: upstream.url, username: 'deployer', password: DEPLOYER_PASSWORD });

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pipeline-oci-'));
  tokens = new RegistryTokenSimulator({
    service: SERVICE,
    issuer: 'test-token-service',
    jwksPath: path.join(dir, 'jwks.json'),
    users: {
      ci: { password: CI_PASSWORD, actions: ['pull', 'push'] },
      deployer: { password: DEPLOYER_PASSWORD, actions: ['pull', 'push'] },
      cache: { password: CACHE_PASSWORD, actions: ['pull'] },
    },
  });
  await tokens.start();
  upstream = await startDistributionRegistry({
    dataDir: path.join(dir, 'upstream'),
    auth: { token: { realm: tokens.realm, service: SERVICE, issuer: 'test-token-service', jwks: path.join(dir, 'jwks.json') } },
  });
  cache = await startDistributionRegistry({ dataDir: path.join(dir, 'cache'), proxy: { remoteurl: upstream.url, username: 'cache', password: CACHE_PASSWORD } });
  h = await startHarness({
    ociRegistries: {
      built: { url: upstream.url, username: 'deployer', password: DEPLOYER_PASSWORD, pushAuthorization: ciAuthorization },
      pulled: { url: cache.url },
    },
    apps: {
      [APP]: {
        image: { registry: 'built', cache: 'pulled', writeDigest: true },
        environments: { integration: { continuousDeployment: true }, staging: { continuousDeployment: true } },
      },
      [GATED]: {
        image: { registry: 'built', cache: 'pulled' },
        environments: { integration: { continuousDeployment: true }, staging: { continuousDeployment: false, approvers: ['anyone'] } },
      },
    },
  });
}, 240_000);

afterAll(async () => {
  await h?.close();
  await cache?.stop();
  await upstream?.stop();
  await tokens?.close();
  if (dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
});

describe('an app whose images are built to an OCI registry and pulled through a cache', () => {
  it('finds the image where it was built (no build dispatched), records its digest everywhere, and tags it deployed there', async () => {
    const repository = h.stack.imageRepositoryOf(APP);
    const sha = await h.stack.merge(APP);
    const built = await upstreamImages().digestOf(repository, sha);
    expect(built).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The cache holds nothing until something pulls through it: asking it whether the image exists would say no.
    expect(await cachedRepositories()).not.toContain(repository);

    const { workflowId } = await h.startCi(APP, sha);
    const result = await h.handle(workflowId).result();
    expect(result).toMatchObject({ status: 'SUCCEEDED', tag: sha, imageDigest: built });
    expect(h.stack.github.dispatches.filter((d) => d.repo === h.stack.repoOf(APP))).toHaveLength(0);

    // deployed-to tags are on the registry the images are built to, on that very image.
    for (const env of ['integration', 'staging']) await expect(upstreamImages().digestOf(repository, `deployed-to-${env}`)).resolves.toBe(built);
    // The chart pulls by digest: it is written beside the tag.
    const file = await h.stack.charts.readFile(`charts/app-config/image-tags/staging/${APP}`);
    expect(file).toContain(`image_tag: ${sha}\nimage_digest: ${built}\n`);
    // GitHub's deployment carries the digest in its payload.
    const deployments = h.stack.github.deployments.filter((d) => d.sha === sha);
    expect(deployments).toHaveLength(2);
    for (const deployment of deployments) expect(deployment.payload).toMatchObject({ pipeline: workflowId, image_repository: repository, image_digest: built });
    // The digest check before each bump asked the cache too, which pulled the image from where it was built.
    expect(await cachedRepositories()).toContain(repository);
    await expect(createOciImageRegistry({ url: cache.url }).digestOf(repository, sha)).resolves.toBe(built);
    // The release app's contract (repo, environment, version) has no place for a digest: it gets the tag.
    expect(h.stack.release.deployments.filter((d) => d.version === sha).map((d) => d.environment).sort()).toEqual(['integration', 'staging']);
  }, 120_000);

  it('builds an image the upstream lacks, and records the digest the build pushed there', async () => {
    const repository = h.stack.imageRepositoryOf(APP);
    const sha = await h.stack.merge(APP, { buildImage: false });
    await expect(upstreamImages().digestOf(repository, sha)).resolves.toBeUndefined();
    const { workflowId } = await h.startCi(APP, sha);
    const result = await h.handle(workflowId).result();
    const built = await upstreamImages().digestOf(repository, sha);
    expect(built).toBeDefined();
    expect(result).toMatchObject({ status: 'SUCCEEDED', imageDigest: built });
    expect(h.stack.github.dispatches.filter((d) => d.repo === h.stack.repoOf(APP) && d.inputs.gitRef === sha)).toHaveLength(1);
    await expect(upstreamImages().digestOf(repository, 'deployed-to-staging')).resolves.toBe(built);
  }, 120_000);

  it('refuses to deploy a tag pushed over after the pipeline checked it, naming both digests', async () => {
    const repository = h.stack.imageRepositoryOf(GATED);
    const sha = await h.stack.merge(GATED);
    const checked = (await upstreamImages().digestOf(repository, sha))!;
    const { workflowId } = await h.startCi(GATED, sha);
    await h.waitForStatus(workflowId, (s) => s.status === 'AWAITING_APPROVAL', 'awaiting approval for staging');
    expect((await h.status(workflowId)).imageDigest).toBe(checked);

    // Someone pushes another build under the same tag while the pipeline waits.
    const other = await pushOciImage(upstream.url, repository, sha, { seed: 'another build', authorization: await ciAuthorization(repository) });
    expect(other.digest).not.toBe(checked);
    const approved = await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'alice']);
    expect(approved.code).toBe(0);

    const failure = await failureOf(h, workflowId);
    expect(failure).toContain(`${repository}:${sha} now names ${other.digest}, not ${checked}, the image this pipeline checked`);
    const file = await h.stack.charts.readFile(`charts/app-config/image-tags/staging/${GATED}`);
    expect(file).toContain('image_tag: initial');
    await expect(upstreamImages().digestOf(repository, 'deployed-to-staging')).resolves.toBeUndefined();
    // integration got the image that was checked, before the tag moved.
    await expect(upstreamImages().digestOf(repository, 'deployed-to-integration')).resolves.toBe(checked);
  }, 120_000);
});
