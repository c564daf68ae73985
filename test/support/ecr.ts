/** Helpers that set up images in moto's ECR for tests. The jest global setup points the AWS SDK at moto. */
import { randomUUID } from 'node:crypto';
import {
  BatchGetImageCommand,
  CreateRepositoryCommand,
  DescribeImagesCommand,
  ECRClient,
  type ImageTagMutability,
} from '@aws-sdk/client-ecr';

export { DOCKER_MANIFEST_V2, pushSyntheticImage, syntheticManifest } from '../../simulators/ecr-images';

/** A repository name no other test uses, so tests need not clean moto up between them. */
export function uniqueRepositoryName(prefix = 'app'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export async function createRepository(
  client: ECRClient,
  name: string,
  tagMutability: ImageTagMutability = 'MUTABLE',
): Promise<void> {
  await client.send(new CreateRepositoryCommand({ repositoryName: name, imageTagMutability: tagMutability }));
}

/** The digest of the image a tag names, or undefined when no image has that tag. */
export async function digestOfTag(client: ECRClient, repository: string, tag: string): Promise<string | undefined> {
  const { images } = await client.send(new BatchGetImageCommand({ repositoryName: repository, imageIds: [{ imageTag: tag }] }));
  return images?.[0]?.imageId?.imageDigest;
}

/** All tags of the image with this digest, sorted. */
export async function tagsOfImage(client: ECRClient, repository: string, digest: string): Promise<string[]> {
  const { imageDetails } = await client.send(new DescribeImagesCommand({ repositoryName: repository, imageIds: [{ imageDigest: digest }] }));
  return [...(imageDetails?.[0]?.imageTags ?? [])].sort();
}

/** How many images the repository holds, tagged or not. */
export async function imageCount(client: ECRClient, repository: string): Promise<number> {
  const { imageDetails } = await client.send(new DescribeImagesCommand({ repositoryName: repository }));
  return imageDetails?.length ?? 0;
}
