/**
 * The image stage (activities/image.ts) alone, in MockActivityEnvironment: moto's ECR through the production
 * adapter, GitHub Actions' dispatches and runs from the GitHub simulator.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type PipelineActivities } from '../activities';
import { startStack, type Stack } from '../sandbox/stack';
import { digestOfTag, tagsOfImage } from './support/ecr';
import { errorFrom } from './support/env';

const APP = 'frontend';

describe('the image stage', () => {
  let dataDir: string;
  let stack: Stack;
  let activities: PipelineActivities;
  const dispatchesOf = (sha: string) => stack.github.dispatches.filter((d) => d.inputs.gitRef === sha);

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'activities-image-'));
    stack = await startStack({ dataDir, apps: { [APP]: {} }, buildDelayMs: 300, polling: { initialIntervalMs: 20, maxIntervalMs: 50 } });
    activities = createActivities(stack.dependencies);
  });
  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('imageExists asks ECR for the tag and answers its digest, and refuses a tag that could climb a path', async () => {
    const sha = await stack.merge(APP, { buildImage: false });
    const env = new MockActivityEnvironment();
    await expect(env.run(activities.imageExists, APP, sha)).resolves.toBe(false);
    await stack.pushImage(APP, sha);
    const digest = await digestOfTag(stack.ecr, stack.imageRepositoryOf(APP), sha);
    expect(digest).toMatch(/^sha256:/);
    await expect(env.run(activities.imageExists, APP, sha)).resolves.toBe(digest);
    const err = await errorFrom(() => env.run(activities.imageExists, APP, '../latest'));
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(err.message).toMatch(/^invalid image tag "\.\.\/latest"/);
    expect(await errorFrom(() => env.run(activities.imageExists, 'no-such-app', sha))).toMatchObject({ type: 'UnknownApp', nonRetryable: true });
  });

  it('dispatches one build per commit however often it is retried, and waits for its image with heartbeats', async () => {
    const sha = await stack.merge(APP, { buildImage: false });
    const request = { app: APP, sha, tag: sha };
    await new MockActivityEnvironment().run(activities.dispatchImageBuild, request);
    await new MockActivityEnvironment({ attempt: 2 }).run(activities.dispatchImageBuild, request);
    expect(dispatchesOf(sha)).toEqual([expect.objectContaining({ repo: stack.repoOf(APP), workflowFile: 'build-image.yml', ref: 'main', inputs: { gitRef: sha } })]);

    const env = new MockActivityEnvironment();
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => heartbeats.push(details));
    const waited = await env.run(activities.waitForImage, request);
    expect(waited).toMatch(/^sha256:/);
    expect(await digestOfTag(stack.ecr, stack.imageRepositoryOf(APP), sha)).toBe(waited);
    expect(heartbeats.length).toBeGreaterThan(0);
    expect(heartbeats[0]).toEqual({ attempt: 0 });

    // The build succeeded: a retried dispatch still finds it and does not build again.
    await stack.github.settled();
    await new MockActivityEnvironment({ attempt: 3 }).run(activities.dispatchImageBuild, request);
    expect(dispatchesOf(sha)).toHaveLength(1);
  });

  it('a failed build fails the wait for good, with the run; a new dispatch is then allowed', async () => {
    const sha = await stack.merge(APP, { buildImage: false });
    const request = { app: APP, sha, tag: sha };
    stack.failBuilds(APP, true);
    try {
      await new MockActivityEnvironment().run(activities.dispatchImageBuild, request);
      const err = await errorFrom(() => new MockActivityEnvironment().run(activities.waitForImage, request));
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: 'ImageBuildFailed', nonRetryable: true });
      expect(err.message).toMatch(new RegExp(`^image build for ${APP} ${sha.slice(0, 7)} ended "failure" \\(\\S+\\); no image ${stack.imageRepositoryOf(APP)}:${sha}$`));
      await new MockActivityEnvironment({ attempt: 2 }).run(activities.dispatchImageBuild, request);
      expect(dispatchesOf(sha)).toHaveLength(2);
    } finally {
      stack.failBuilds(APP, false);
      await stack.github.settled();
    }
  });

  it('tagImage marks the image deployed-to-<environment>; a retry finds the tag there', async () => {
    const sha = await stack.merge(APP);
    const step = { app: APP, environment: 'staging', tag: sha };
    await new MockActivityEnvironment().run(activities.tagImage, step);
    await new MockActivityEnvironment({ attempt: 2 }).run(activities.tagImage, step);
    const repository = stack.imageRepositoryOf(APP);
    const digest = await digestOfTag(stack.ecr, repository, sha);
    expect((await tagsOfImage(stack.ecr, repository, digest!)).sort()).toEqual([sha, 'deployed-to-staging'].sort());
    const err = await errorFrom(() => new MockActivityEnvironment().run(activities.tagImage, { ...step, environment: 'qa' }));
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true, message: `app "${APP}" has no environment "qa" (it has: integration, staging, production)` });
  });
});
