import { createHash } from 'node:crypto';
import { json, Simulator, type SimRequest, type SimResponse } from './http';

/**
 * Amazon ECR's API as the pipeline and the sandbox use it, for machines without moto's server: the AWS
 * JSON 1.1 protocol (`POST /`, `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>`), so the
 * AWS SDK talks to it through `AWS_ENDPOINT_URL_ECR` unchanged. Like real ECR, an image's digest is the
 * SHA-256 of its manifest bytes. Signatures are not checked.
 */

export interface EcrSimulatorOptions {
  host?: string;
  port?: number;
  accountId?: string;
  region?: string;
}

interface StoredImage {
  digest: string;
  manifest: string;
  mediaType: string;
  tags: Set<string>;
  pushedAt: Date;
}

interface Repository {
  name: string;
  createdAt: Date;
  mutable: boolean;
  images: Map<string, StoredImage>;
}

interface ImageId {
  imageDigest?: string;
  imageTag?: string;
}

const TARGET_PREFIX = 'AmazonEC2ContainerRegistry_V20150921.';
const CONTENT_TYPE = 'application/x-amz-json-1.1';
const DEFAULT_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
const REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,299}$/;

class EcrError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export class EcrSimulator extends Simulator {
  private readonly repositories = new Map<string, Repository>();
  private readonly accountId: string;
  private readonly region: string;

  constructor(options: EcrSimulatorOptions = {}) {
    super({
      host: options.host,
      port: options.port,
      invalidJson: () => awsError(new EcrError('SerializationException', 'the request body is not valid JSON')),
    });
    this.accountId = options.accountId ?? '123456789012';
    this.region = options.region ?? 'eu-west-2';
    this.server.route('POST', /^\/$/, (req) => this.dispatch(req));
  }

  /** Access key IDs whose identity has no permission for these actions (as an IAM policy that lacks them). */
  private readonly denied = new Map<string, Set<string>>();

  /**
   * Takes these actions (e.g. `DescribeImages`) away from the identity signing with this access key ID: ECR then
   * answers as for an IAM policy that does not allow them.
   */
  deny(accessKeyId: string, actions: string[]): void {
    this.denied.set(accessKeyId, new Set([...(this.denied.get(accessKeyId) ?? []), ...actions]));
  }

  /** Tags of every image of a repository, for assertions. */
  tagsOf(repository: string): string[] {
    const repo = this.repositories.get(repository);
    return repo ? [...repo.images.values()].flatMap((image) => [...image.tags]).sort() : [];
  }

  private dispatch(req: SimRequest): SimResponse {
    const target = String(req.headers['x-amz-target'] ?? '');
    if (!target.startsWith(TARGET_PREFIX)) return awsError(new EcrError('UnknownOperationException', `unknown target "${target}"`));
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Record<string, unknown>;
    const action = target.slice(TARGET_PREFIX.length);
    // SigV4: "AWS4-HMAC-SHA256 Credential=<access key ID>/<date>/<region>/ecr/aws4_request, ...".
    const accessKeyId = /Credential=([^/,\s]+)\//.exec(String(req.headers.authorization ?? ''))?.[1];
    if (accessKeyId && this.denied.get(accessKeyId)?.has(action)) {
      const resource = `arn:aws:ecr:${this.region}:${this.accountId}:repository/${String(body.repositoryName ?? '*')}`;
      return awsError(
        new EcrError(
          'AccessDeniedException',
          `User: arn:aws:iam::${this.accountId}:user/${accessKeyId} is not authorized to perform: ecr:${action} on resource: ${resource} because no identity-based policy allows the ecr:${action} action`,
        ),
      );
    }
    try {
      switch (action) {
        case 'CreateRepository':
          return ok(this.createRepository(body));
        case 'DescribeRepositories':
          return ok(this.describeRepositories(body));
        case 'PutImage':
          return ok(this.putImage(body));
        case 'BatchGetImage':
          return ok(this.batchGetImage(body));
        case 'DescribeImages':
          return ok(this.describeImages(body));
        case 'ListImages':
          return ok(this.listImages(body));
        case 'BatchDeleteImage':
          return ok(this.batchDeleteImage(body));
        default:
          throw new EcrError('UnknownOperationException', `operation ${target.slice(TARGET_PREFIX.length)} is not simulated`);
      }
    } catch (err) {
      if (err instanceof EcrError) return awsError(err);
      throw err;
    }
  }

  private createRepository(body: Record<string, unknown>) {
    const name = repositoryName(body.repositoryName);
    if (this.repositories.has(name)) {
      throw new EcrError('RepositoryAlreadyExistsException', `The repository with name '${name}' already exists in the registry with id '${this.accountId}'`);
    }
    const repo: Repository = { name, createdAt: new Date(), mutable: body.imageTagMutability !== 'IMMUTABLE', images: new Map() };
    this.repositories.set(name, repo);
    return { repository: this.repositoryJson(repo) };
  }

  private describeRepositories(body: Record<string, unknown>) {
    const names = Array.isArray(body.repositoryNames) ? body.repositoryNames.map(repositoryName) : undefined;
    const repos = names ? names.map((name) => this.repository(name)) : [...this.repositories.values()];
    return { repositories: repos.map((repo) => this.repositoryJson(repo)) };
  }

  private putImage(body: Record<string, unknown>) {
    const repo = this.repository(repositoryName(body.repositoryName));
    if (typeof body.imageManifest !== 'string' || body.imageManifest === '') throw new EcrError('InvalidParameterException', 'imageManifest is required');
    const manifest = body.imageManifest;
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    if (typeof body.imageDigest === 'string' && body.imageDigest !== digest) {
      throw new EcrError('ImageDigestDoesNotMatchException', `Invalid parameter at 'imageDigest' failed to satisfy constraint: 'digest does not match manifest'`);
    }
    const tag = body.imageTag === undefined ? undefined : imageTag(body.imageTag);
    const existing = repo.images.get(digest);
    if (existing && (tag === undefined || existing.tags.has(tag))) {
      throw new EcrError(
        'ImageAlreadyExistsException',
        `Image with digest '${digest}'${tag ? ` and tag '${tag}'` : ''} already exists in the repository with name '${repo.name}' in registry with id '${this.accountId}'`,
      );
    }
    if (tag !== undefined) {
      const holder = [...repo.images.values()].find((image) => image.tags.has(tag));
      if (holder && !repo.mutable) {
        throw new EcrError('ImageTagAlreadyExistsException', `The image tag '${tag}' already exists in the '${repo.name}' repository and cannot be overwritten because the repository is immutable.`);
      }
      holder?.tags.delete(tag);
    }
    const mediaType = typeof body.imageManifestMediaType === 'string' ? body.imageManifestMediaType : (mediaTypeOf(manifest) ?? DEFAULT_MEDIA_TYPE);
    const image = existing ?? { digest, manifest, mediaType, tags: new Set<string>(), pushedAt: new Date() };
    if (tag !== undefined) image.tags.add(tag);
    repo.images.set(digest, image);
    return { image: this.imageJson(repo, image, tag) };
  }

  private batchGetImage(body: Record<string, unknown>) {
    const repo = this.repository(repositoryName(body.repositoryName));
    const accepted = Array.isArray(body.acceptedMediaTypes) ? (body.acceptedMediaTypes as unknown[]).map(String) : undefined;
    const images: unknown[] = [];
    const failures: unknown[] = [];
    for (const id of imageIds(body.imageIds)) {
      const image = this.find(repo, id);
      if (!image) {
        failures.push({ imageId: id, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' });
      } else if (accepted && !accepted.includes(image.mediaType)) {
        failures.push({ imageId: id, failureCode: 'UnsupportedImageType', failureReason: `Image of media type ${image.mediaType} is not accepted` });
      } else {
        images.push(this.imageJson(repo, image, id.imageTag));
      }
    }
    return { images, failures };
  }

  private describeImages(body: Record<string, unknown>) {
    const repo = this.repository(repositoryName(body.repositoryName));
    let found: StoredImage[];
    if (body.imageIds !== undefined) {
      found = imageIds(body.imageIds).map((id) => {
        const image = this.find(repo, id);
        if (!image) {
          throw new EcrError(
            'ImageNotFoundException',
            `The image with imageId {imageDigest:'${id.imageDigest ?? 'null'}', imageTag:'${id.imageTag ?? 'null'}'} does not exist within the repository with name '${repo.name}' in the registry with id '${this.accountId}'`,
          );
        }
        return image;
      });
    } else {
      found = [...repo.images.values()];
    }
    return {
      imageDetails: found.map((image) => ({
        registryId: this.accountId,
        repositoryName: repo.name,
        imageDigest: image.digest,
        imageTags: [...image.tags],
        imageSizeInBytes: Buffer.byteLength(image.manifest),
        imagePushedAt: image.pushedAt.getTime() / 1000,
        imageManifestMediaType: image.mediaType,
      })),
    };
  }

  private listImages(body: Record<string, unknown>) {
    const repo = this.repository(repositoryName(body.repositoryName));
    const imageIds = [...repo.images.values()].flatMap((image) =>
      image.tags.size === 0 ? [{ imageDigest: image.digest }] : [...image.tags].map((tag) => ({ imageDigest: image.digest, imageTag: tag })),
    );
    return { imageIds };
  }

  private batchDeleteImage(body: Record<string, unknown>) {
    const repo = this.repository(repositoryName(body.repositoryName));
    const deleted: ImageId[] = [];
    const failures: unknown[] = [];
    for (const id of imageIds(body.imageIds)) {
      const image = this.find(repo, id);
      if (!image) {
        failures.push({ imageId: id, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' });
        continue;
      }
      if (id.imageTag !== undefined && id.imageDigest === undefined) {
        image.tags.delete(id.imageTag);
        deleted.push({ imageDigest: image.digest, imageTag: id.imageTag });
        if (image.tags.size > 0) continue;
      } else {
        deleted.push(...[...image.tags].map((tag) => ({ imageDigest: image.digest, imageTag: tag })));
      }
      repo.images.delete(image.digest);
    }
    return { imageIds: deleted, failures };
  }

  private repository(name: string): Repository {
    const repo = this.repositories.get(name);
    if (!repo) {
      throw new EcrError('RepositoryNotFoundException', `The repository with name '${name}' does not exist in the registry with id '${this.accountId}'`);
    }
    return repo;
  }

  private find(repo: Repository, id: ImageId): StoredImage | undefined {
    const byDigest = id.imageDigest !== undefined ? repo.images.get(id.imageDigest) : undefined;
    if (id.imageDigest !== undefined && !byDigest) return undefined;
    if (id.imageTag === undefined) return byDigest;
    const byTag = [...repo.images.values()].find((image) => image.tags.has(id.imageTag!));
    return byDigest && byTag !== byDigest ? undefined : byTag;
  }

  private repositoryJson(repo: Repository) {
    return {
      repositoryArn: `arn:aws:ecr:${this.region}:${this.accountId}:repository/${repo.name}`,
      registryId: this.accountId,
      repositoryName: repo.name,
      repositoryUri: `${this.accountId}.dkr.ecr.${this.region}.amazonaws.com/${repo.name}`,
      createdAt: repo.createdAt.getTime() / 1000,
      imageTagMutability: repo.mutable ? 'MUTABLE' : 'IMMUTABLE',
      imageScanningConfiguration: { scanOnPush: false },
      encryptionConfiguration: { encryptionType: 'AES256' },
    };
  }

  private imageJson(repo: Repository, image: StoredImage, tag: string | undefined) {
    return {
      registryId: this.accountId,
      repositoryName: repo.name,
      imageId: { imageDigest: image.digest, ...(tag !== undefined ? { imageTag: tag } : {}) },
      imageManifest: image.manifest,
      imageManifestMediaType: image.mediaType,
    };
  }
}

function ok(body: unknown): SimResponse {
  return json(200, body, { 'content-type': CONTENT_TYPE });
}

function awsError(err: EcrError): SimResponse {
  return json(400, { __type: err.type, message: err.message }, { 'content-type': CONTENT_TYPE, 'x-amzn-errortype': err.type });
}

function repositoryName(value: unknown): string {
  if (typeof value !== 'string' || value.length < 2 || value.length > 256 || !REPOSITORY_NAME.test(value)) {
    throw new EcrError('InvalidParameterException', `Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression ${REPOSITORY_NAME.source}'`);
  }
  return value;
}

function imageTag(value: unknown): string {
  if (typeof value !== 'string' || !TAG.test(value)) {
    throw new EcrError('InvalidParameterException', `Invalid parameter at 'imageTag' failed to satisfy constraint: 'must be 1 to 300 letters, digits, "_", "." or "-"'`);
  }
  return value;
}

function imageIds(value: unknown): ImageId[] {
  if (!Array.isArray(value) || value.length === 0) throw new EcrError('InvalidParameterException', 'imageIds must list at least one image');
  return value.map((item) => {
    const { imageDigest, imageTag: tag } = (item ?? {}) as Record<string, unknown>;
    if (typeof imageDigest !== 'string' && typeof tag !== 'string') throw new EcrError('InvalidParameterException', 'an imageId needs an imageDigest or an imageTag');
    return { ...(typeof imageDigest === 'string' ? { imageDigest } : {}), ...(typeof tag === 'string' ? { imageTag: tag } : {}) };
  });
}

function mediaTypeOf(manifest: string): string | undefined {
  try {
    const mediaType = (JSON.parse(manifest) as { mediaType?: unknown }).mediaType;
    return typeof mediaType === 'string' ? mediaType : undefined;
  } catch {
    return undefined;
  }
}
