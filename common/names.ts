/**
 * Strict patterns for every name that reaches a file path, a git argument or a URL.
 * Kept free of Node imports: the workflow bundle uses it too.
 */

export class InvalidNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidNameError';
  }
}

const APP = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ENVIRONMENT = /^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
// Docker tag grammar, minus anything that could climb a path.
const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const FULL_SHA = /^[0-9a-f]{40}$/;
const GIT_REF_CHARS = /^[A-Za-z0-9._/-]{1,200}$/;
const GITHUB_LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const REPO = /^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/;

function describe(value: unknown): string {
  if (typeof value !== 'string') return `a ${value === null ? 'null' : typeof value}`;
  const shown = value.length > 60 ? `${value.slice(0, 60)}…` : value;
  return JSON.stringify(shown);
}

function check(kind: string, value: unknown, pattern: RegExp, rule: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new InvalidNameError(`invalid ${kind} ${describe(value)}: ${rule}`);
  }
  return value;
}

export function validateAppName(value: unknown): string {
  return check('app name', value, APP, 'use lower-case letters, digits and single hyphens (at most 63 characters)');
}

export function validateEnvironmentName(value: unknown): string {
  return check('environment', value, ENVIRONMENT, 'use lower-case letters, digits and hyphens, starting with a letter (at most 32 characters)');
}

export function validateImageTag(value: unknown): string {
  const tag = check('image tag', value, IMAGE_TAG, 'use letters, digits, "_", "." and "-", not starting with "." or "-" (at most 128 characters)');
  if (tag.includes('..')) throw new InvalidNameError(`invalid image tag ${describe(value)}: ".." is not allowed`);
  return tag;
}

/** What the release app is told of a tag: GOV.UK's Release app shows versions without a `release-` prefix. */
export function releaseVersion(tag: string): string {
  const version = tag.replace(/^release-/, '');
  return version === '' ? tag : version;
}

const IMAGE_DIGEST = /^sha256:[a-f0-9]{64}$/;

export function isImageDigest(value: unknown): value is string {
  return typeof value === 'string' && IMAGE_DIGEST.test(value);
}

/** A tag, or the digest of one image (`sha256:` and 64 hex digits): what an image can be named by. */
export function validateImageReference(value: unknown): string {
  return isImageDigest(value) ? value : validateImageTag(value);
}

export function isFullSha(value: string): boolean {
  return FULL_SHA.test(value);
}

/** A branch, tag or commit SHA, as git check-ref-format would accept it, and never an option. */
export function validateGitRef(value: unknown): string {
  const rule = 'a git ref is a branch, tag or commit SHA made of letters, digits, ".", "_", "-" and "/"';
  const ref = check('git ref', value, GIT_REF_CHARS, rule);
  const broken =
    ref.startsWith('-') ||
    ref.startsWith('/') ||
    ref.startsWith('.') ||
    ref.endsWith('/') ||
    ref.endsWith('.') ||
    ref.endsWith('.lock') ||
    ref.includes('..') ||
    ref.includes('//') ||
    ref.split('/').some((part) => part.startsWith('.'));
  if (broken) throw new InvalidNameError(`invalid git ref ${describe(value)}: ${rule}`);
  return ref;
}

export function validateApprover(value: unknown): string {
  return check('approver', value, GITHUB_LOGIN, 'give a GitHub login (letters, digits and hyphens, at most 39 characters)');
}

export function validateRepo(value: unknown): string {
  return check('repository', value, REPO, 'write it as "<owner>/<name>"');
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

export function ciWorkflowId(app: string, sha: string): string {
  return `deploy-${app}-${sha}`;
}

export function manualWorkflowId(app: string, sha: string, environment: string): string {
  return `deploy-${app}-${sha}-${environment}-manual`;
}

export function deployedToTag(environment: string): string {
  return `deployed-to-${environment}`;
}
