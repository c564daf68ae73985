/** The production ECR adapter against moto's server (an independent ECR implementation). */
import { PermanentHttpError } from '../common/errors';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ECRClient } from '@aws-sdk/client-ecr';
import { createEcrImageRegistry } from '../adapters/ecr';
import { InvalidNameError } from '../common/names';
import { type ImageRegistry } from '../common/ports';
import { createRepository, digestOfTag, imageCount, pushSyntheticImage, tagsOfImage, uniqueRepositoryName } from './support/ecr';

let client: ECRClient;
let registry: ImageRegistry;

beforeAll(() => {
  // Never let these tests reach a real AWS account.
  if (!process.env.AWS_ENDPOINT_URL_ECR) {
    throw new Error('AWS_ENDPOINT_URL_ECR is not set: the jest global setup starts moto and sets it');
  }
  client = new ECRClient({});
  registry = createEcrImageRegistry({ client });
});

afterAll(() => client?.destroy());

async function repositoryWith(...tags: string[]): Promise<string> {
  const repository = uniqueRepositoryName('whitehall');
  await createRepository(client, repository);
  for (const tag of tags) await pushSyntheticImage(client, repository, tag);
  return repository;
}

describe('hasImage', () => {
  test('is true for a pushed tag and false for another', async () => {
    const repository = await repositoryWith('v1');
    await expect(registry.hasImage(repository, 'v1')).resolves.toBe(true);
    await expect(registry.hasImage(repository, 'v2')).resolves.toBe(false);
  });

  test('an unknown repository is a permanent 404 naming it', async () => {
    const missing = uniqueRepositoryName('nowhere');
    const err = await registry.hasImage(missing, 'v1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentHttpError);
    expect((err as PermanentHttpError).status).toBe(404);
    expect((err as Error).message).toContain(missing);
  });

  test('refuses a tag that is not a docker tag before calling ECR', async () => {
    await expect(registry.hasImage('whitehall', '../v1')).rejects.toBeInstanceOf(InvalidNameError);
  });
});

describe('digestOf', () => {
  test('tells the digest a tag names, and nothing for a tag that is not there', async () => {
    const repository = await repositoryWith('v1', 'v2');
    const digest = await digestOfTag(client, repository, 'v1');
    await expect(registry.digestOf(repository, 'v1')).resolves.toBe(digest);
    await expect(registry.digestOf(repository, 'v2')).resolves.not.toBe(digest);
    await expect(registry.digestOf(repository, 'v3')).resolves.toBeUndefined();
  });
});

describe('addTag', () => {
  test('tags the image a digest names', async () => {
    const repository = await repositoryWith('v1', 'v2');
    const checked = await digestOfTag(client, repository, 'v1');
    await registry.addTag(repository, checked!, 'deployed-to-staging');
    expect(await digestOfTag(client, repository, 'deployed-to-staging')).toBe(checked);
    await expect(registry.addTag(repository, `sha256:${'0'.repeat(64)}`, 'deployed-to-staging')).rejects.toThrow(`has no image sha256:${'0'.repeat(64)}`);
  });

  test('puts the new tag on the same image', async () => {
    const repository = await repositoryWith('v1');
    const digest = await digestOfTag(client, repository, 'v1');

    await registry.addTag(repository, 'v1', 'deployed-to-staging');

    expect(await digestOfTag(client, repository, 'deployed-to-staging')).toBe(digest);
    expect(await tagsOfImage(client, repository, digest!)).toEqual(['deployed-to-staging', 'v1']);
    expect(await imageCount(client, repository)).toBe(1);
  });

  test('is idempotent: a second call succeeds and changes nothing', async () => {
    const repository = await repositoryWith('v1');
    const digest = await digestOfTag(client, repository, 'v1');

    await registry.addTag(repository, 'v1', 'deployed-to-staging');
    await registry.addTag(repository, 'v1', 'deployed-to-staging');

    expect(await tagsOfImage(client, repository, digest!)).toEqual(['deployed-to-staging', 'v1']);
    expect(await imageCount(client, repository)).toBe(1);
  });

  test('moves a tag from an older image to a newer one', async () => {
    const repository = await repositoryWith('v1', 'v2');
    const older = await digestOfTag(client, repository, 'v1');
    const newer = await digestOfTag(client, repository, 'v2');
    expect(older).not.toBe(newer);

    await registry.addTag(repository, 'v1', 'deployed-to-production');
    await registry.addTag(repository, 'v2', 'deployed-to-production');

    expect(await digestOfTag(client, repository, 'deployed-to-production')).toBe(newer);
    expect(await tagsOfImage(client, repository, older!)).toEqual(['v1']);
    expect(await tagsOfImage(client, repository, newer!)).toEqual(['deployed-to-production', 'v2']);
  });

  test('a missing source image is a permanent error naming the repository and tag', async () => {
    const repository = await repositoryWith('v1');
    const err = await registry.addTag(repository, 'v9', 'deployed-to-staging').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentHttpError);
    expect((err as PermanentHttpError).status).toBe(404);
    expect((err as Error).message).toContain(repository);
    expect((err as Error).message).toContain('"v9"');
    await expect(registry.hasImage(repository, 'deployed-to-staging')).resolves.toBe(false);
  });

  test('an unknown repository is a permanent 404', async () => {
    const missing = uniqueRepositoryName('nowhere');
    const err = await registry.addTag(missing, 'v1', 'deployed-to-staging').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentHttpError);
    expect((err as PermanentHttpError).status).toBe(404);
    expect((err as Error).message).toContain(missing);
  });

  test('errors ECR may recover from stay plain, retryable errors', async () => {
    const unreachable = createEcrImageRegistry({
      client: new ECRClient({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }),
    });
    const err = await unreachable.hasImage('whitehall', 'v1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(PermanentHttpError);
  });
});

describe('without a client given', () => {
  test("uses the AWS SDK's own chain (here, the endpoint of the test ECR)", async () => {
    const repository = await repositoryWith('v1');
    const fromChain = createEcrImageRegistry();
    await expect(fromChain.hasImage(repository, 'v1')).resolves.toBe(true);
    await expect(fromChain.hasImage(repository, 'v2')).resolves.toBe(false);
  });

  test("the worker's modules leave the AWS SDK unloaded until the first ECR call", async () => {
    // In a process of its own: jest's module registry is not the one a worker has.
    const script = `
      const loaded = () => Object.keys(require.cache).some((file) => file.includes('@aws-sdk/client-ecr'));
      require('./worker/adapters.ts');
      require('./worker/create-worker.ts');
      const { createEcrImageRegistry } = require('./adapters/ecr.ts');
      const registry = createEcrImageRegistry();
      const before = loaded();
      registry.hasImage('whitehall', 'v1').catch(() => undefined).finally(() => {
        console.log(JSON.stringify({ before, after: loaded() }));
        process.exit(0);
      });`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', script], { cwd: path.resolve(__dirname, '..') });
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({ before: false, after: true });
  });
});
