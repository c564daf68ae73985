/** Stands in for an image build: puts synthetic images into an ECR endpoint (moto's server in tests and the sandbox). */
import { createHash } from 'node:crypto';
import { CreateRepositoryCommand, ECRClient, PutImageCommand, RepositoryAlreadyExistsException } from '@aws-sdk/client-ecr';

export const DOCKER_MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

function sha256(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

export async function ensureRepository(client: ECRClient, name: string): Promise<void> {
  try {
    await client.send(new CreateRepositoryCommand({ repositoryName: name, imageTagMutability: 'MUTABLE' }));
  } catch (err) {
    if (!(err instanceof RepositoryAlreadyExistsException)) throw err;
  }
}

/**
 * A small, valid docker v2 manifest. Config and layer digests derive from `seed`, so two seeds make two
 * different images (moto derives an image's digest from its layers, real ECR from the manifest bytes).
 */
export function syntheticManifest(seed: string): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST_V2,
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 1024, digest: sha256(`config:${seed}`) },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 4096, digest: sha256(`layer:${seed}`) }],
  });
}

/** Pushes a synthetic image under `tag`; returns its digest. The seed defaults to the tag. */
export async function pushSyntheticImage(client: ECRClient, repository: string, tag: string, seed: string = tag): Promise<string> {
  const { image } = await client.send(
    new PutImageCommand({
      repositoryName: repository,
      imageManifest: syntheticManifest(seed),
      imageManifestMediaType: DOCKER_MANIFEST_V2,
      imageTag: tag,
    }),
  );
  const digest = image?.imageId?.imageDigest;
  if (!digest) throw new Error(`ECR returned no digest for ${repository}:${tag}`);
  return digest;
}
