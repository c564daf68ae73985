import { PermanentHttpError } from '../common/errors';
import type { ECRClient } from '@aws-sdk/client-ecr';
import { InvalidNameError, isImageDigest, validateImageReference, validateImageTag } from '../common/names';
import { type ImageRegistry } from '../common/ports';

export interface EcrImageRegistryOptions {
  /** Region, credentials and endpoint come from the AWS SDK's own chain when no client is given. */
  client?: ECRClient;
  /** The account that owns the repositories; the caller's own account when omitted. */
  registryId?: string;
}

/** Without an explicit list ECR may answer with a converted schema 1 manifest, which would not be the same image. */
const ACCEPTED_MANIFEST_MEDIA_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
];

const REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

function validateRepositoryName(value: string): string {
  if (value.length > 256 || !REPOSITORY_NAME.test(value)) {
    throw new InvalidNameError(`invalid ECR repository name ${JSON.stringify(value)}`);
  }
  return value;
}

type EcrSdk = typeof import('@aws-sdk/client-ecr');
let sdkLoading: Promise<EcrSdk> | undefined;

/** The AWS SDK takes about 55 ms to load: a worker loads it for its first ECR call, not before its first poll. */
function loadSdk(): Promise<EcrSdk> {
  return (sdkLoading ??= import('@aws-sdk/client-ecr'));
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

function repositoryNotFound(repository: string): PermanentHttpError {
  return new PermanentHttpError(`ECR repository "${repository}" does not exist (or this account cannot see it)`, 404);
}

/**
 * AWS refused the worker's identity: no retry changes a missing permission or unknown keys, and waiting out the
 * build timeout would only hide it behind "image build timed out".
 */
function permissionProblem(err: unknown, action: string, repository: string): PermanentHttpError | undefined {
  const name = errorName(err);
  if (name !== 'AccessDeniedException' && name !== 'UnrecognizedClientException') return undefined;
  const detail = err instanceof Error && err.message ? `: ${err.message}` : '';
  const why = name === 'AccessDeniedException' ? `may not ${action} on ECR repository "${repository}"` : 'is not known to AWS (check its access keys)';
  return new PermanentHttpError(`ECR permissions error: the worker's AWS identity ${why}${detail}`, 403);
}

function imageNotFound(repository: string, reference: string): PermanentHttpError {
  return new PermanentHttpError(`ECR repository "${repository}" has no image ${isImageDigest(reference) ? reference : `tagged "${reference}"`}`, 404);
}

export function createEcrImageRegistry(options: EcrImageRegistryOptions = {}): ImageRegistry {
  let client = options.client;
  const { registryId } = options;

  async function ecr(): Promise<{ sdk: EcrSdk; client: ECRClient }> {
    const sdk = await loadSdk();
    client ??= new sdk.ECRClient({});
    return { sdk, client };
  }

  async function digestOf(repository: string, tag: string): Promise<string | undefined> {
    validateRepositoryName(repository);
    validateImageTag(tag);
    const { sdk, client } = await ecr();
    try {
      const found = await client.send(new sdk.DescribeImagesCommand({ registryId, repositoryName: repository, imageIds: [{ imageTag: tag }] }));
      const digest = found.imageDetails?.[0]?.imageDigest;
      if (!digest) throw new Error(`ECR described image "${tag}" of repository "${repository}" without its digest`);
      return digest;
    } catch (err) {
      if (errorName(err) === 'ImageNotFoundException') return undefined;
      if (errorName(err) === 'RepositoryNotFoundException') throw repositoryNotFound(repository);
      throw permissionProblem(err, 'ecr:DescribeImages', repository) ?? err;
    }
  }

  return {
    digestOf,

    async hasImage(repository, tag) {
      return (await digestOf(repository, tag)) !== undefined;
    },

    async addTag(repository, sourceTag, newTag) {
      validateRepositoryName(repository);
      validateImageReference(sourceTag);
      validateImageTag(newTag);
      const { sdk, client } = await ecr();
      const source = isImageDigest(sourceTag) ? { imageDigest: sourceTag } : { imageTag: sourceTag };

      let found;
      try {
        found = await client.send(
          new sdk.BatchGetImageCommand({
            registryId,
            repositoryName: repository,
            imageIds: [source],
            acceptedMediaTypes: ACCEPTED_MANIFEST_MEDIA_TYPES,
          }),
        );
      } catch (err) {
        if (errorName(err) === 'RepositoryNotFoundException') throw repositoryNotFound(repository);
        throw permissionProblem(err, 'ecr:BatchGetImage', repository) ?? err;
      }

      const image = found.images?.[0];
      if (!image?.imageManifest) {
        const failure = found.failures?.[0];
        if (!failure || failure.failureCode === 'ImageNotFound') throw imageNotFound(repository, sourceTag);
        // Throttling, upstream outages and the like may pass; let the activity retry them.
        throw new Error(
          `ECR could not read image "${sourceTag}" of repository "${repository}": ${failure.failureCode ?? 'unknown failure'}${failure.failureReason ? ` (${failure.failureReason})` : ''}`,
        );
      }

      try {
        await client.send(
          new sdk.PutImageCommand({
            registryId,
            repositoryName: repository,
            // The manifest must go back byte for byte: its digest is the image's identity.
            imageManifest: image.imageManifest,
            imageManifestMediaType: image.imageManifestMediaType,
            imageDigest: image.imageId?.imageDigest,
            imageTag: newTag,
          }),
        );
      } catch (err) {
        // The tag already names this very image: an earlier attempt (or another pipeline) did the work.
        if (errorName(err) === 'ImageAlreadyExistsException') return;
        if (errorName(err) === 'RepositoryNotFoundException') throw repositoryNotFound(repository);
        if (errorName(err) === 'ImageTagAlreadyExistsException') {
          throw new PermanentHttpError(
            `ECR repository "${repository}" has immutable tags and "${newTag}" already names another image; ` +
              `moving "${newTag}" to "${sourceTag}" needs mutable tags`,
            409,
          );
        }
        throw permissionProblem(err, 'ecr:PutImage', repository) ?? err;
      }
    },
  };
}
