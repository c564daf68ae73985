/**
 * The sandbox's ECR simulator (for machines without moto) must answer the AWS SDK as moto's server does:
 * the same production adapter and image helpers run against both, with the same outcomes.
 */
import { PermanentHttpError } from '../common/errors';
import { CreateRepositoryCommand, DescribeImagesCommand, ECRClient, PutImageCommand } from '@aws-sdk/client-ecr';
import { createEcrImageRegistry } from '../adapters/ecr';

import { EcrSimulator } from '../simulators/ecr';
import { ensureRepository, pushSyntheticImage, syntheticManifest } from '../simulators/ecr-images';
import { digestOfTag, tagsOfImage, uniqueRepositoryName } from './support/ecr';

const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

describe('ECR refusing the worker\'s identity', () => {
  it('is a permissions error, at once, naming the action and repository', async () => {
    const simulator = new EcrSimulator();
    const { url } = await simulator.start();
    const admin = new ECRClient({ endpoint: url, region: 'eu-west-2', credentials: CREDENTIALS });
    const restricted = new ECRClient({ endpoint: url, region: 'eu-west-2', credentials: { accessKeyId: 'AKIADEPLOYWORKER', secretAccessKey: 'testing' } });
    try {
      const repository = uniqueRepositoryName('guarded');
      await ensureRepository(admin, repository);
      await pushSyntheticImage(admin, repository, 'v1');
      simulator.deny('AKIADEPLOYWORKER', ['DescribeImages', 'PutImage']);
      const registry = createEcrImageRegistry({ client: restricted });

      const looking = await registry.hasImage(repository, 'v1').catch((err: unknown) => err);
      expect(looking).toBeInstanceOf(PermanentHttpError);
      expect((looking as Error).message).toMatch(
        new RegExp(`^ECR permissions error: the worker's AWS identity may not ecr:DescribeImages on ECR repository "${repository}": User: arn:aws:iam::\\d+:user/AKIADEPLOYWORKER is not authorized to perform: ecr:DescribeImages`),
      );
      const tagging = await registry.addTag(repository, 'v1', 'deployed-to-staging').catch((err: unknown) => err);
      expect(tagging).toBeInstanceOf(PermanentHttpError);
      expect((tagging as Error).message).toMatch(/may not ecr:PutImage on ECR repository/);
      expect(simulator.tagsOf(repository)).toEqual(['v1']);
    } finally {
      admin.destroy();
      restricted.destroy();
      await simulator.close();
    }
  });
});

describe.each(['moto', 'simulator'] as const)('ECR through the AWS SDK against %s', (kind) => {
  let simulator: EcrSimulator | undefined;
  let client: ECRClient;

  beforeAll(async () => {
    let endpoint = process.env.AWS_ENDPOINT_URL_ECR;
    if (kind === 'simulator') {
      simulator = new EcrSimulator();
      endpoint = (await simulator.start()).url;
    }
    if (!endpoint) throw new Error('AWS_ENDPOINT_URL_ECR is not set: run through jest, whose global setup starts moto');
    client = new ECRClient({ endpoint, region: 'eu-west-2', credentials: CREDENTIALS });
  });
  afterAll(async () => {
    client?.destroy();
    await simulator?.close();
  });

  it('creates repositories once and stores images under tags', async () => {
    const repository = uniqueRepositoryName('sandbox/app');
    await ensureRepository(client, repository);
    await ensureRepository(client, repository);
    const digest = await pushSyntheticImage(client, repository, 'v1');
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await digestOfTag(client, repository, 'v1')).toBe(digest);
    expect(await digestOfTag(client, repository, 'v2')).toBeUndefined();
    // Another seed is another image.
    expect(await pushSyntheticImage(client, repository, 'v2')).not.toBe(digest);
  });

  it('serves the pipeline adapter: hasImage, and addTag that moves nothing but the new tag', async () => {
    const repository = uniqueRepositoryName('app');
    await ensureRepository(client, repository);
    const registry = createEcrImageRegistry({ client });
    const digest = await pushSyntheticImage(client, repository, 'abc123');

    expect(await registry.hasImage(repository, 'abc123')).toBe(true);
    expect(await registry.hasImage(repository, 'nope')).toBe(false);
    await registry.addTag(repository, 'abc123', 'deployed-to-staging');
    // Tagging again is success: the tag already names this image.
    await registry.addTag(repository, 'abc123', 'deployed-to-staging');
    expect(await tagsOfImage(client, repository, digest)).toEqual(['abc123', 'deployed-to-staging']);

    // A newer release takes the environment tag over; the old image keeps its own.
    const newer = await pushSyntheticImage(client, repository, 'def456');
    await registry.addTag(repository, 'def456', 'deployed-to-staging');
    expect(await tagsOfImage(client, repository, newer)).toEqual(['def456', 'deployed-to-staging']);
    expect(await tagsOfImage(client, repository, digest)).toEqual(['abc123']);

    await expect(registry.addTag(repository, 'missing', 'deployed-to-staging')).rejects.toThrow(PermanentHttpError);
    await expect(registry.hasImage(uniqueRepositoryName('absent'), 'abc123')).rejects.toThrow(/does not exist/);
  });

  // moto 5.2.5 lets PutImage move a tag in an IMMUTABLE repository; real ECR refuses, as the simulator does.
  const realEcrBehaviour = kind === 'simulator' ? it : it.skip;
  realEcrBehaviour('refuses to move a tag in an immutable repository', async () => {
    const repository = uniqueRepositoryName('frozen');
    await client.send(new CreateRepositoryCommand({ repositoryName: repository, imageTagMutability: 'IMMUTABLE' }));
    const registry = createEcrImageRegistry({ client });
    await pushSyntheticImage(client, repository, 'one');
    await pushSyntheticImage(client, repository, 'two');
    await registry.addTag(repository, 'one', 'deployed-to-production');
    await expect(registry.addTag(repository, 'two', 'deployed-to-production')).rejects.toThrow(/immutable tags/);
  });

  it('answers errors with the exception names the SDK maps', async () => {
    const repository = uniqueRepositoryName('errors');
    await expect(client.send(new DescribeImagesCommand({ repositoryName: repository }))).rejects.toMatchObject({ name: 'RepositoryNotFoundException' });
    await ensureRepository(client, repository);
    await expect(client.send(new CreateRepositoryCommand({ repositoryName: repository }))).rejects.toMatchObject({ name: 'RepositoryAlreadyExistsException' });
    await expect(client.send(new DescribeImagesCommand({ repositoryName: repository, imageIds: [{ imageTag: 'x' }] }))).rejects.toMatchObject({
      name: 'ImageNotFoundException',
    });
    await pushSyntheticImage(client, repository, 'same');
    await expect(
      client.send(new PutImageCommand({ repositoryName: repository, imageManifest: syntheticManifest('same'), imageTag: 'same' })),
    ).rejects.toMatchObject({ name: 'ImageAlreadyExistsException' });
  });
});
