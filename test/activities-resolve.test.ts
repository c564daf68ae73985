/**
 * The resolve stage (activities/resolve.ts) alone, in MockActivityEnvironment, against the GitHub simulator through
 * the production adapter: it checks the commit the client resolved instead of resolving the ref again, and sorts
 * what goes wrong into "stop" and "retry".
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type PipelineActivities } from '../activities';
import type { PipelineInput, ReleasePlan } from '../common/types';
import { startStack, type Stack } from '../sandbox/stack';
import { errorFrom } from './support/env';

const MAX_ATTEMPTS = 3;

describe('resolveRelease', () => {
  let dataDir: string;
  let stack: Stack;
  let activities: PipelineActivities;
  const repo = () => stack.repoOf('whitehall');
  /** The input as anyone may send it: the step must refuse what the type would not allow. */
  const resolve = (input: Record<string, unknown>, attempt = 1): Promise<ReleasePlan> =>
    new MockActivityEnvironment({ attempt }).run(activities.resolveRelease, input as unknown as PipelineInput);
  const commitReads = () => stack.github.requests.filter((r) => r.method === 'GET' && r.path.startsWith(`/repos/${repo()}/commits/`)).map((r) => r.path);

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'activities-resolve-'));
    stack = await startStack({
      dataDir,
      stepRetry: { maximumAttempts: MAX_ATTEMPTS },
      apps: {
        whitehall: { environments: { integration: {}, staging: { continuousDeployment: false }, production: { continuousDeployment: false } } },
        'release-tagged': { tagScheme: 'release-tag', environments: { integration: {} } },
      },
    });
    activities = createActivities(stack.dependencies);
  });
  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    stack.github.clearRequests();
    stack.github.clearFaults();
  });

  it('plans the commit the input names, with its tag, environments and author', async () => {
    const sha = await stack.merge('whitehall', { authorLogin: 'alice' });
    const plan = await resolve({ app: 'whitehall', ref: sha, sha, trigger: 'ci' });
    expect(plan).toMatchObject({ app: 'whitehall', repo: repo(), sha, tag: sha, authorLogin: 'alice', stepRetry: { maximumAttempts: MAX_ATTEMPTS } });
    expect(plan.environments.map((env) => [env.name, env.continuousDeployment])).toEqual([
      ['integration', true],
      ['staging', false],
      ['production', false],
    ]);
    const manual = await resolve({ app: 'whitehall', ref: sha, sha, trigger: 'manual', environment: 'staging' });
    expect(manual.environments.map((env) => [env.name, env.continuousDeployment])).toEqual([['staging', false]]);
    // A manual deploy into an environment that needs approval waits for one: who wrote the commit matters there too.
    expect(manual.authorLogin).toBe('alice');
    expect(manual).toMatchObject({ onMainBranch: true, mainBranch: 'main' });
  });

  it('deploys the commit the client resolved, not where the branch is now, and never looks the branch up', async () => {
    const first = await stack.merge('whitehall', { branch: 'feature-moving' });
    const second = await stack.merge('whitehall', { branch: 'feature-moving' });
    expect(stack.github.branchTip(repo(), 'feature-moving')).toBe(second);
    const plan = await resolve({ app: 'whitehall', ref: 'feature-moving', sha: first, trigger: 'manual', environment: 'integration' });
    expect(plan).toMatchObject({ sha: first, tag: first });
    expect(commitReads()).toEqual([`/repos/${repo()}/commits/${first}`]);
  });

  it.each([
    ['no sha at all', {}, 'InvalidInput', /^the pipeline's input names no commit: "sha" must be the full commit SHA the client resolved "main" to/],
    ['a short SHA', { sha: 'abcdef1' }, 'InvalidInput', /^invalid commit SHA "abcdef1": "sha" is a full commit SHA/],
    ['an upper-case SHA', { sha: 'A'.repeat(40) }, 'InvalidInput', /^invalid commit SHA "A{40}"/],
    ['a number', { sha: 42 }, 'InvalidInput', /^invalid commit SHA a number/],
    ['a commit the repo does not have', { sha: '0'.repeat(40) }, 'RefNotFound', /^GitHub repository alphagov\/whitehall has no commit 0{40} \(what "main" was resolved to\)$/],
  ])('refuses for good %s, on the first attempt', async (_what, sha, type, message) => {
    const err = await errorFrom(() => resolve({ app: 'whitehall', ref: 'main', trigger: 'ci', ...sha }));
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type, nonRetryable: true });
    expect(err.message).toMatch(message);
  });

  it('refuses a full-SHA ref that names another commit than the sha', async () => {
    const [a, b] = [await stack.merge('whitehall'), await stack.merge('whitehall')];
    const err = await errorFrom(() => resolve({ app: 'whitehall', ref: a, sha: b, trigger: 'ci' }));
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true, message: `the input's ref is commit ${a} but its sha is ${b}: they must name the same commit` });
  });

  it('checks the app, ref and trigger before it asks GitHub anything', async () => {
    const sha = await stack.merge('whitehall');
    for (const [input, message] of [
      [{ app: 'nope', ref: 'main', sha, trigger: 'ci' }, /^unknown app "nope"/],
      [{ app: 'whitehall', ref: '--upload-pack=x', sha, trigger: 'ci' }, /^invalid git ref/],
      [{ app: 'whitehall', ref: 'main', sha, trigger: 'manual' }, /^a manual deploy names the one environment to deploy$/],
      [{ app: 'whitehall', ref: 'main', sha, trigger: 'manual', environment: 'qa' }, /^app "whitehall" has no environment "qa"/],
    ] as const) {
      const err = await errorFrom(() => resolve(input));
      expect(err).toMatchObject({ nonRetryable: true });
      expect(err.message).toMatch(message);
    }
    expect(commitReads()).toEqual([]);
  });

  it('a GitHub outage is retried until the last attempt the catalogue allows, which fails for good with the same message', async () => {
    const sha = await stack.merge('whitehall');
    stack.github.injectFault({ method: 'GET', pathPattern: `^/repos/${repo()}/commits/${sha}`, status: 503, times: Infinity });
    const early = await errorFrom(() => resolve({ app: 'whitehall', ref: sha, sha, trigger: 'ci' }, 1));
    expect(early).not.toBeInstanceOf(ApplicationFailure);
    expect(early.message).toMatch(/^GitHub GET \S+\/commits\/[0-9a-f]{40}\S* returned 503/);
    const last = await errorFrom(() => resolve({ app: 'whitehall', ref: sha, sha, trigger: 'ci' }, MAX_ATTEMPTS));
    expect(last).toBeInstanceOf(ApplicationFailure);
    expect(last).toMatchObject({ nonRetryable: true, message: early.message });
    stack.github.clearFaults();
    await expect(resolve({ app: 'whitehall', ref: sha, sha, trigger: 'ci' }, 2)).resolves.toMatchObject({ sha });
  });

  it('a release-tag app needs a matching tag on the commit', async () => {
    const untagged = await stack.merge('release-tagged');
    const err = await errorFrom(() => resolve({ app: 'release-tagged', ref: untagged, sha: untagged, trigger: 'ci' }));
    expect(err).toMatchObject({ type: 'RefNotFound', nonRetryable: true });
    expect(err.message).toMatch(/^commit [0-9a-f]{7} of alphagov\/release-tagged has no release tag matching \/\^v\[0-9\]\+\$\/; tag the commit before deploying it$/);
    stack.github.addTag(stack.repoOf('release-tagged'), 'v3231', untagged);
    await expect(resolve({ app: 'release-tagged', ref: 'v3231', sha: untagged, trigger: 'ci' })).resolves.toMatchObject({ sha: untagged, tag: 'v3231' });
  });
});

describe('the GitHub adapter’s hasCommit', () => {
  let dataDir: string;
  let stack: Stack;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'activities-resolve-host-'));
    stack = await startStack({ dataDir, apps: { whitehall: { environments: { integration: {} } } } });
  });
  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('is true for a commit of the repo, false for an unknown SHA and for a branch named like one', async () => {
    const host = stack.dependencies.sourceHost;
    const repo = stack.repoOf('whitehall');
    const sha = await stack.merge('whitehall');
    await expect(host.hasCommit(repo, sha)).resolves.toBe(true);
    await expect(host.hasCommit(repo, '0'.repeat(40))).resolves.toBe(false);
    const impostor = 'e'.repeat(40);
    stack.github.setBranch(repo, impostor, sha);
    await expect(host.hasCommit(repo, impostor)).resolves.toBe(false);
    expect(stack.github.requests.filter((r) => r.path.includes('/commits/')).map((r) => [r.path, r.status])).toEqual([
      [`/repos/${repo}/commits/${sha}`, 200],
      [`/repos/${repo}/commits/${'0'.repeat(40)}`, 404],
      [`/repos/${repo}/commits/${impostor}`, 200],
    ]);
  });
});
