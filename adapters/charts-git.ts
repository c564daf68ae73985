import { existsSync } from 'node:fs';
import { lstat, mkdir, realpath, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GitError, simpleGit, type SimpleGit } from 'simple-git';
import { isMap, isScalar, parseDocument, Scalar, stringify, type Document } from 'yaml';
import { DEFAULT_CHARTS_PATH, imageTagPath } from '../common/catalogue';
import { PushRefusedError } from '../common/errors';
import { InvalidNameError, isFullSha, isImageDigest, validateGitRef, validateImageTag } from '../common/names';
import type { ChartsRepository, ImageTagChange, ImageTagCommit, ImageTagFile } from '../common/ports';

export interface CommitAuthor {
  name: string;
  email: string;
}

export interface GitChartsRepositoryOptions {
  /** May carry credentials; they are masked in every error this adapter throws. */
  remoteUrl: string;
  branch?: string;
  /** A working clone owned by this worker process, created on first use. */
  workdir: string;
  chartsPath?: string;
  author?: CommitAuthor;
  maxPushAttempts?: number;
  /** Called after each commit, just before it is pushed: lets tests land a competing commit at the worst moment. */
  beforePush?: (attempt: number) => Promise<void>;
  /** Hears every git command before it runs (its arguments): each is a process, the adapter's main cost. */
  onGitCommand?: (args: readonly string[]) => void;
}

export const DEFAULT_CHARTS_AUTHOR: CommitAuthor = { name: 'Deploy Pipeline', email: 'deploy-pipeline@users.noreply.github.com' };

const IMAGE_TAG_KEY = 'image_tag';
/** Beside the tag, for charts that pull by digest: `image_digest: sha256:…`, or empty when only the tag is known. */
const IMAGE_DIGEST_KEY = 'image_digest';
const AUTOMATIC_DEPLOYS_KEY = 'automatic_deploys_enabled';
// Helm reads values with a YAML 1.1 parser: `on`, `no`, `0755` must keep meaning what Helm thinks they mean.
const YAML_VERSION = '1.1';
const HISTORY_SEARCH_LIMIT = 200;
// Long enough for a slow remote, short enough that a hung network call does not eat the activity's whole timeout.
const SILENT_GIT_TIMEOUT_MS = 120_000;
const PUSH_BACKOFF_BASE_MS = 50;
const PUSH_BACKOFF_MAX_MS = 1_000;
// simple-git waits 50 ms after a command that printed nothing, in case output is late. Every command here
// therefore prints something on success (no --quiet; --verbose; `cat-file -t`; `merge-base` printing the base):
// silent, a deploy's dozen git commands slept 0.5 s per environment, one after another in the serialised clone.
// `commit` prints "[<branch> <abbreviated SHA>] <subject>"; abbreviated to all 40 digits, it spares a `rev-parse`.
// Every git process is a fork of the worker, which blocks its main thread, the longer the busier the machine.
const FULL_ABBREV = 'core.abbrev=40';
const COMMIT_SUMMARY = /^\[.*? ([0-9a-f]{40}|[0-9a-f]{64})\] /;

/** A git command that exited non-zero; `exitCode` tells "no" (1) from "broken" (128) where git makes that distinction. */
export class GitCommandError extends GitError {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(undefined, message);
    this.name = 'GitCommandError';
  }
}

/** Names the credential helper reads; not GIT_* names, which simple-git refuses to pass on. */
const USERNAME_VARIABLE = 'DEPLOY_CHARTS_USERNAME';
const PASSWORD_VARIABLE = 'DEPLOY_CHARTS_PASSWORD';
/**
 * Git asks this helper for credentials when the remote says 401. It holds no secret itself: it prints what its
 * git process was given in its environment, so the token never sits in `.git/config` or on a command line.
 */
const CREDENTIAL_HELPER = `!f() { test "$1" = get || exit 0; printf 'username=%s\\npassword=%s\\n' "$${USERNAME_VARIABLE}" "$${PASSWORD_VARIABLE}"; }; f`;

/**
 * What a git process may see of the worker's environment: enough to run and reach the remote (search path, home,
 * locale, proxies, CA bundles, an SSH agent), nothing else. The worker holds GitHub, Argo CD and AWS secrets.
 */
const VARIABLES_GIT_NEEDS = [
  'PATH',
  'HOME',
  'TMPDIR',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'LC_MESSAGES',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'all_proxy',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'SSH_AUTH_SOCK',
];

export interface RemoteCredentials {
  username: string;
  password: string;
}

/** The environment of every git process this adapter starts. */
export function gitChildEnvironment(parent: NodeJS.ProcessEnv, credentials: RemoteCredentials | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of VARIABLES_GIT_NEEDS) {
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  // A missing or wrong token fails at once instead of waiting at a prompt nobody sees.
  env.GIT_TERMINAL_PROMPT = '0';
  if (credentials) {
    env[USERNAME_VARIABLE] = credentials.username;
    env[PASSWORD_VARIABLE] = credentials.password;
  }
  return env;
}

/** An http(s) remote's user and password move out of the URL, into what the credential helper hands git. */
export function splitRemoteCredentials(remoteUrl: string): { url: string; credentials?: RemoteCredentials } {
  if (!/^https?:\/\//i.test(remoteUrl)) return { url: remoteUrl };
  let parsed: URL;
  try {
    parsed = new URL(remoteUrl);
  } catch {
    return { url: remoteUrl };
  }
  if (!parsed.username && !parsed.password) return { url: remoteUrl };
  // GitHub takes any user name with a token as the password; a token alone in the user part means the same.
  const username = decodeURIComponent(parsed.username) || 'x-access-token';
  const password = parsed.password ? decodeURIComponent(parsed.password) : decodeURIComponent(parsed.username);
  const credentials = parsed.password ? { username, password } : { username: 'x-access-token', password };
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.toString(), credentials };
}

/**
 * git prints `! [remote rejected] <ref> (<reason>)` when the remote's rules refuse a push; GitHub adds GH006 for
 * branch protection and GH013 for repository rules. Anything else (a lost connection, a 5xx) may pass.
 */
function refusalByPolicy(err: unknown, branch: string): PushRefusedError | undefined {
  const text = err instanceof Error ? err.message : String(err);
  if (!/\[remote rejected\]|GH006|GH013|protected branch/i.test(text)) return undefined;
  const protectedBranch = /GH006|protected branch/i.test(text);
  const rule = /GH013|repository rule/i.test(text);
  const what = protectedBranch ? `branch protection on ${branch}` : rule ? `a repository rule on ${branch}` : `a rule of the remote (pre-receive hook) on ${branch}`;
  return new PushRefusedError(
    `the charts repository refused our push: ${what}. Let the deploy identity push to ${branch}, or change the rule; retrying will not help. ${text}`,
  );
}

function maskCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}

interface PendingBump {
  filePath: string;
  tag: string;
  message: string;
  /** Written beside the tag when given. */
  digest?: string;
  /** Written as `promote_deployment` in the same commit when given. */
  promoteDeployment?: boolean;
  /** The clone's `looks` count when the bump was asked for. */
  since: number;
  resolve: (change: ImageTagChange) => void;
  reject: (err: unknown) => void;
}

/** Facts about commits kept per clone: file contents and ancestry answers. */
const FACT_CACHE_SIZE = 5_000;

/** A Map that forgets its oldest entries beyond `limit`. */
class BoundedCache<K, V> {
  private readonly entries = new Map<K, V>();
  constructor(private readonly limit: number) {}
  has(key: K): boolean {
    return this.entries.has(key);
  }
  get(key: K): V | undefined {
    return this.entries.get(key);
  }
  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value as K);
  }
}

// Several activities share one worker process; two git commands interleaving in one clone would corrupt it.
const workdirQueues = new Map<string, Promise<void>>();

function serialised<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = workdirQueues.get(key) ?? Promise.resolve();
  const result = previous.then(work);
  const tail = result.then(
    () => undefined,
    () => undefined,
  );
  workdirQueues.set(key, tail);
  void tail.then(() => {
    if (workdirQueues.get(key) === tail) workdirQueues.delete(key);
  });
  return result;
}

const CHARTS_PATH_SEGMENT = /^[A-Za-z0-9_{][A-Za-z0-9._{}-]*$/;

function validateChartsPath(chartsPath: string): string {
  const ok =
    chartsPath.includes('{app}') &&
    chartsPath.includes('{environment}') &&
    chartsPath.split('/').every((segment) => CHARTS_PATH_SEGMENT.test(segment));
  if (!ok) {
    throw new InvalidNameError(
      `invalid charts path ${JSON.stringify(chartsPath)}: a relative path of letters, digits, ".", "_", "-" holding {app} and {environment}`,
    );
  }
  return chartsPath;
}

function hasControlCharacters(text: string): boolean {
  return [...text].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f);
}

function validateRemoteUrl(url: string): string {
  if (!url || url.startsWith('-') || /\s/.test(url) || hasControlCharacters(url)) {
    throw new InvalidNameError(`invalid charts repository URL ${JSON.stringify(maskCredentials(url))}`);
  }
  return url;
}

function validateAuthor(author: CommitAuthor): CommitAuthor {
  const bad = (value: string) => !value.trim() || /[<>]/.test(value) || hasControlCharacters(value);
  if (bad(author.name) || bad(author.email)) {
    throw new InvalidNameError(`invalid commit author ${JSON.stringify(`${author.name} <${author.email}>`)}`);
  }
  return author;
}

function validateCommitMessage(message: string): string {
  if (!message.trim() || message.includes('\0')) throw new InvalidNameError('a charts commit needs a non-empty message');
  return message;
}

function parseTagFile(text: string, where: string): Document {
  const doc = parseDocument(text, { version: YAML_VERSION });
  if (doc.errors.length > 0) throw new Error(`${where} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  if (doc.contents !== null && !isMap(doc.contents)) throw new Error(`${where} is not a YAML mapping`);
  return doc;
}

function imageTagOf(doc: Document, where: string): string | undefined {
  return scalarOf(doc, IMAGE_TAG_KEY, where);
}

function scalarOf(doc: Document, key: string, where: string): string | undefined {
  const node = doc.get(key, true);
  if (node === undefined || node === null) return undefined;
  if (!isScalar(node)) throw new Error(`${where}: ${key} is not a single value`);
  if (node.value === null) return undefined;
  // The text as written: an unquoted 1234567 or 1e10 is still the tag a human means.
  return node.source ?? String(node.value);
}

const PROMOTE_KEY = 'promote_deployment';

/** GOV.UK's post-sync workflow promotes only on a flag that says true; missing or anything else is false. */
function saysTrue(doc: Document | undefined, key: string): boolean {
  return flagWord(doc, key) === 'true';
}

/** A flag's text, in lower case and out of its quotes; undefined when the key is missing or holds no single value. */
function flagWord(doc: Document | undefined, key: string): string | undefined {
  const node = doc?.get(key, true);
  return isScalar(node) ? String(node.source ?? node.value).trim().toLowerCase() : undefined;
}

/**
 * Only `true` or `false` (bare or quoted) is a decision. Anything else (`no`, `off`, `0`, an empty value) means
 * different things to different YAML readers, so it fails closed: no automatic deploy until a person fixes it.
 */
function freezeFlagIn(doc: Document, where: string): Pick<ImageTagFile, 'automaticDeploysEnabled' | 'freezeFlagProblem'> {
  if (!doc.has(AUTOMATIC_DEPLOYS_KEY)) return { automaticDeploysEnabled: true };
  const node = doc.get(AUTOMATIC_DEPLOYS_KEY, true);
  const written = isScalar(node) ? String(node.source ?? node.value).trim() : undefined;
  const meaning = isScalar(node) && (typeof node.value === 'boolean' || typeof node.value === 'string') ? written?.toLowerCase() : undefined;
  if (meaning === 'true') return { automaticDeploysEnabled: true };
  if (meaning === 'false') return { automaticDeploysEnabled: false };
  const shown = written === undefined || written === '' || written === 'null' ? 'empty' : JSON.stringify(written.slice(0, 40));
  return {
    automaticDeploysEnabled: false,
    freezeFlagProblem: `${where}: ${AUTOMATIC_DEPLOYS_KEY} is ${shown}, neither true nor false; automatic deploys stay off until it says one of them`,
  };
}

/**
 * The file with its `image_tag` set to `tag`, and every other byte as it was: other keys, their order, comments,
 * spacing, quotes and line endings (GOV.UK's files are edited by people and by other tools too). A file without
 * the key gets it as its first line, where GOV.UK's files keep it; an empty or missing file becomes that line.
 * `promoteDeployment`, when given, is GOV.UK's update-image-tag's second write: its line changes unless it already
 * says exactly that (`yes` means true to Helm and false to a post-sync reading "true"); a missing key goes at the
 * end, where yq puts it.
 */
function withImageTag(text: string | undefined, tag: string, where: string, digest?: string, promoteDeployment?: boolean): string {
  let edited = editScalar(text ?? '', IMAGE_TAG_KEY, tag, where);
  if (digest !== undefined) edited = editScalar(edited, IMAGE_DIGEST_KEY, digest, where);
  if (promoteDeployment !== undefined && flagWord(parseTagFile(edited, where), PROMOTE_KEY) !== String(promoteDeployment)) {
    edited = editScalar(edited, PROMOTE_KEY, promoteDeployment, where);
  }
  // The edit is textual: read it back as Helm will, so no file leaves here meaning something else.
  const doc = parseTagFile(edited, where);
  const wrote = [`${IMAGE_TAG_KEY}: ${tag}`, digest ? `${IMAGE_DIGEST_KEY}: ${digest}` : '', promoteDeployment === undefined ? '' : `${PROMOTE_KEY}: ${promoteDeployment}`];
  if (
    imageTagOf(doc, where) !== tag ||
    (digest !== undefined && (scalarOf(doc, IMAGE_DIGEST_KEY, where) ?? '') !== digest) ||
    (promoteDeployment !== undefined && flagWord(doc, PROMOTE_KEY) !== String(promoteDeployment))
  ) {
    throw new Error(`${where}: could not write ${wrote.filter(Boolean).join(' and ')} without changing what else the file says`);
  }
  return edited;
}

/** A file without the tag gets it as its first line; a digest it lacks goes on the line after the tag, any other key at the end. */
function editScalar(original: string, key: string, text: string | boolean, where: string): string {
  const doc = parseTagFile(original, where);
  const eol = original.includes('\r\n') ? '\r\n' : '\n';
  const pairOf = (name: string) => (isMap(doc.contents) ? doc.contents.items.find((item) => isScalar(item.key) && item.key.value === name) : undefined);
  const pair = pairOf(key);
  if (!pair) {
    const line = `${key}: ${scalarText(text, undefined)}${eol}`;
    const tagValue = key === IMAGE_DIGEST_KEY ? pairOf(IMAGE_TAG_KEY)?.value : undefined;
    const tagEnd = isScalar(tagValue) && tagValue.range ? original.indexOf('\n', tagValue.range[1]) : -1;
    if (tagEnd >= 0) return `${original.slice(0, tagEnd + 1)}${line}${original.slice(tagEnd + 1)}`;
    return key === IMAGE_TAG_KEY || original === '' ? `${line}${original}` : `${original}${original.endsWith('\n') ? '' : eol}${line}`;
  }
  const value = pair.value;
  if (isScalar(value) && value.range && value.range[1] > value.range[0] && value.value !== null) {
    const [from, to] = value.range;
    return `${original.slice(0, from)}${scalarText(text, value.type)}${original.slice(to)}`;
  }
  // `image_tag:` with no value (or `~`): the value goes right after the colon.
  const keyEnd = (pair.key as { range?: [number, number, number] }).range?.[1];
  if (keyEnd === undefined || original[keyEnd] !== ':') throw new Error(`${where}: cannot find where ${key} is written`);
  const valueEnd = isScalar(value) && value.range ? value.range[1] : keyEnd + 1;
  return `${original.slice(0, keyEnd + 1)} ${scalarText(text, undefined)}${original.slice(Math.max(valueEnd, keyEnd + 1))}`;
}

/**
 * The value as a YAML scalar: in the quotes the old value had, else plain unless YAML would read it as something
 * else. A flag is a bare true or false, as yq writes it (GOV.UK's post-sync compares the text with "true").
 */
function scalarText(value: string | boolean, style: string | undefined): string {
  const text = String(value);
  if (style === Scalar.QUOTE_DOUBLE) return JSON.stringify(text);
  if (style === Scalar.QUOTE_SINGLE) return `'${text.replace(/'/g, "''")}'`;
  return typeof value === 'boolean' ? text : stringify(text, { version: YAML_VERSION, lineWidth: 0 }).trim();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function pushBackoffMs(attempt: number): number {
  return Math.random() * Math.min(PUSH_BACKOFF_MAX_MS, PUSH_BACKOFF_BASE_MS * 2 ** (attempt - 1));
}

async function refuseSymlinks(root: string, relativePath: string): Promise<void> {
  let current = root;
  for (const segment of relativePath.split('/')) {
    current = path.join(current, segment);
    const stats = await lstat(current).catch(() => undefined);
    if (!stats) return;
    if (stats.isSymbolicLink()) throw new Error(`refusing to write through the symbolic link ${relativePath} in the charts repository`);
  }
}

export function createGitChartsRepository(options: GitChartsRepositoryOptions): ChartsRepository {
  const { url: remoteUrl, credentials } = splitRemoteCredentials(validateRemoteUrl(options.remoteUrl));
  const branch = validateGitRef(options.branch ?? 'main');
  const workdir = path.resolve(options.workdir);
  const catalogueView = { chartsPath: validateChartsPath(options.chartsPath ?? DEFAULT_CHARTS_PATH) };
  const author = validateAuthor(options.author ?? DEFAULT_CHARTS_AUTHOR);
  const maxPushAttempts = Math.max(1, Math.floor(options.maxPushAttempts ?? 20));
  const remoteBranch = `refs/remotes/origin/${branch}`;

  let git: SimpleGit | undefined;
  let workdirReady = false;

  async function run(args: string[]): Promise<string> {
    options.onGitCommand?.(args);
    try {
      return await git!.raw(args);
    } catch (err) {
      if (err instanceof GitCommandError) {
        throw new GitCommandError(err.exitCode, `git ${args[0]} failed (exit ${err.exitCode}): ${err.message}`);
      }
      throw new Error(`git ${args[0]} failed: ${maskCredentials(err instanceof Error ? err.message : String(err))}`);
    }
  }

  async function openWorkdir(): Promise<void> {
    if (workdirReady) return;
    await mkdir(workdir, { recursive: true });
    git ??= simpleGit({
      baseDir: workdir,
      config: [
        `user.name=${author.name}`,
        `user.email=${author.email}`,
        'commit.gpgsign=false',
        'core.autocrlf=false',
        FULL_ABBREV,
        // The empty value drops helpers from the machine's git config: credentials come from us or not at all.
        'credential.helper=',
        ...(credentials ? [`credential.helper=${CREDENTIAL_HELPER}`] : []),
      ],
      // Our own helper, which holds no secret (see CREDENTIAL_HELPER).
      unsafe: { allowUnsafeCredentialHelper: true },
      allowEnvironment: ['GIT_TERMINAL_PROMPT'],
      timeout: { block: SILENT_GIT_TIMEOUT_MS },
      errors(error, result) {
        // Any non-zero exit is an error, even a silent one: `merge-base` answers "no common ancestor" with exit 1 alone.
        if (typeof result.exitCode !== 'number' || result.exitCode <= 0) return error;
        const output = [...result.stdErr, ...result.stdOut].map((chunk) => chunk.toString('utf8').trim()).filter(Boolean).join('\n');
        return new GitCommandError(result.exitCode, maskCredentials(output) || 'no output');
      },
    }).env(gitChildEnvironment(process.env, credentials));
    // Without its own .git, git would climb to an enclosing repository and reset that one instead.
    if (!existsSync(path.join(workdir, '.git'))) await run(['init', '--quiet']);
    // Nothing else in this process uses the clone yet: a lock left here is from a worker that died mid-command.
    await rm(path.join(workdir, '.git', 'index.lock'), { force: true });
    const topLevel = (await run(['rev-parse', '--show-toplevel'])).trim();
    if ((await realpath(topLevel)) !== (await realpath(workdir))) {
      throw new Error(`the charts workdir ${workdir} is not the top of its own git clone`);
    }
    const configured = await run(['config', '--get', 'remote.origin.url']).catch(() => undefined);
    if (configured === undefined) await run(['remote', 'add', 'origin', remoteUrl]);
    else if (configured.trim() !== remoteUrl) await run(['remote', 'set-url', 'origin', remoteUrl]);
    workdirReady = true;
  }

  // Calls wait their turn in the clone's queue. One that waited while another fetched, a fetch begun after the
  // call was made, can use what that fetch saw: the remote as it was at some moment during the call. With many
  // pipelines at once most reads then need no fetch of their own. A push of ours counts as such a look.
  let looks = 0;
  let lastLook: { look: number; tip: string } | undefined;

  // Commits this clone is known to hold (fetched tips; our own commits are in `madeHere`): when the remote's tip is
  // one of them, asking where the branch is costs one process and nothing needs fetching.
  const fetchedTips = new BoundedCache<string, true>(FACT_CACHE_SIZE);

  /** Where the branch points on the remote: `ls-remote`, and a fetch only when that is a commit this clone lacks. */
  async function lookAtRemote(): Promise<string> {
    const look = ++looks;
    const listed = await run(['ls-remote', '--exit-code', 'origin', `refs/heads/${branch}`]).catch((err: unknown) => {
      // --exit-code: 2 is "no such ref", which a fetch would have failed on too, less clearly.
      if (err instanceof GitCommandError && err.exitCode === 2) throw new Error(`the charts repository has no branch ${branch}`);
      throw err;
    });
    // ls-remote matches the pattern at the end of a ref's name: only the branch itself counts.
    const listedTip = listed
      .split('\n')
      .map((line) => line.split('\t'))
      .find(([, ref]) => ref === `refs/heads/${branch}`)?.[0];
    let tip: string;
    if (listedTip && (madeHere.has(listedTip) || fetchedTips.has(listedTip))) {
      tip = listedTip;
    } else {
      await run(['fetch', '--verbose', '--no-tags', 'origin', `+refs/heads/${branch}:${remoteBranch}`]);
      tip = (await run(['rev-parse', '--verify', '--quiet', `${remoteBranch}^{commit}`])).trim();
      fetchedTips.set(tip, true);
    }
    lastLook = { look, tip };
    return tip;
  }

  /** The remote branch's commit as seen by a look begun after `since` (the `looks` count when the call was made). */
  async function tipSince(since: number): Promise<string> {
    return lastLook && lastLook.look > since ? lastLook.tip : lookAtRemote();
  }

  // A commit never changes, so neither does a file in it nor its ancestry: what git said once holds for good.
  const filesAt = new BoundedCache<string, string | undefined>(FACT_CACHE_SIZE);
  const ancestries = new BoundedCache<string, boolean>(FACT_CACHE_SIZE);
  // Our own commits change one file each: every other file is as it was in the parent.
  const madeHere = new BoundedCache<string, { parent: string; changed: string }>(FACT_CACHE_SIZE);

  async function fileAt(commit: string, filePath: string): Promise<string | undefined> {
    let at = commit;
    for (let made = madeHere.get(at); made && made.changed !== filePath; made = madeHere.get(at)) at = made.parent;
    const key = `${at}:${filePath}`;
    if (filesAt.has(key)) return filesAt.get(key);
    const listing = await run(['ls-tree', '-z', commit, '--', filePath]);
    let text: string | undefined;
    if (listing) {
      const [meta = ''] = listing.split('\t');
      const [mode, type, object] = meta.split(' ');
      if (type !== 'blob' || mode === '120000' || !object) {
        throw new Error(`${filePath} in the charts repository is not a regular file`);
      }
      text = await run(['cat-file', 'blob', object]);
    }
    filesAt.set(key, text);
    return text;
  }

  async function imageTagAt(commit: string, filePath: string): Promise<string | undefined> {
    const text = await fileAt(commit, filePath);
    return text === undefined ? undefined : imageTagOf(parseTagFile(text, filePath), filePath);
  }

  /**
   * The newest commit that set the file's image_tag to `tag`, and the tag before it: what the first run
   * returned, so a retry after a push that the caller never heard of gets the same answer.
   */
  async function commitThatSet(tip: string, filePath: string, tag: string): Promise<Omit<ImageTagChange, 'changed'>> {
    const log = await run(['log', `--max-count=${HISTORY_SEARCH_LIMIT}`, '--format=%H %P', tip, '--', filePath]);
    let oldest: Omit<ImageTagChange, 'changed'> | undefined;
    for (const line of log.split('\n').filter(Boolean)) {
      const [commit = '', parent] = line.split(' ');
      // Later edits of other keys keep the tag; an unreadable old version cannot have held it.
      const previousTag = parent ? await imageTagAt(parent, filePath).catch(() => undefined) : undefined;
      if (previousTag !== tag) return { chartsCommit: commit, previousTag };
      oldest = { chartsCommit: commit, previousTag };
    }
    if (!oldest) throw new Error(`no commit on ${branch} holds ${filePath}`);
    return oldest;
  }

  async function writeWorktreeFile(filePath: string, content: string): Promise<void> {
    await refuseSymlinks(workdir, filePath);
    const target = path.join(workdir, filePath);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content);
  }

  /** `merge-base --is-ancestor`, but printing: the best common ancestor of A and B is A exactly when A is an ancestor of B. */
  async function isAncestorOf(ancestor: string, descendant: string): Promise<boolean> {
    try {
      return (await run(['merge-base', ancestor, descendant])).trim() === ancestor;
    } catch (err) {
      if (err instanceof GitCommandError && err.exitCode === 1) return false;
      throw err;
    }
  }

  async function landedOnRemote(commit: string, tip: string): Promise<boolean> {
    return tip === commit || isAncestorOf(commit, tip);
  }

  /** Whether `ancestor` is in the history of `descendant`; undefined when this clone lacks either commit. */
  async function knownAncestry(ancestor: string, descendant: string): Promise<boolean | undefined> {
    const key = `${ancestor}..${descendant}`;
    let known = ancestries.get(key);
    if (known !== undefined) return known;
    // Our own commits know their parents: down a chain of them, the ancestor needs no git to be found.
    for (let at: string | undefined = descendant, steps = 0; at !== undefined && steps < FACT_CACHE_SIZE; steps++) {
      if (at === ancestor) {
        ancestries.set(key, true);
        return true;
      }
      at = madeHere.get(at)?.parent;
    }
    try {
      known = (await run(['merge-base', ancestor, descendant])).trim() === ancestor;
    } catch (err) {
      if (err instanceof GitCommandError && err.exitCode === 1) known = false;
      else if (err instanceof GitCommandError) return undefined;
      else throw err;
    }
    ancestries.set(key, known);
    return known;
  }

  const pendingBumps: PendingBump[] = [];
  /**
   * The commit that the checked-out branch, the index and the worktree are known to be at: set by our checkout
   * and by each commit of ours, cleared while a bump writes. A batch based there needs no checkout.
   */
  let worktreeAt: string | undefined;

  /**
   * Commits every bump waiting for the clone, one commit each on top of the last, and pushes them in one go.
   * The charts branch takes one push at a time whatever we do; with many pipelines at once, one push (and one
   * fetch) for many commits is what keeps the branch from being everyone's queue.
   */
  async function flushBumps(): Promise<void> {
    const batch = pendingBumps.splice(0);
    if (batch.length === 0) return;
    try {
      await openWorkdir();
      await commitAndPush(batch);
    } catch (err) {
      for (const bump of batch) bump.reject(err);
    }
  }

  async function commitAndPush(batch: PendingBump[]): Promise<void> {
    let live = batch;
    for (let attempt = 1; ; attempt++) {
      // A stale base only costs a rejected push and another attempt, which fetches.
      const base = attempt === 1 ? await tipSince(Math.min(...live.map((bump) => bump.since))) : await lookAtRemote();
      let head = base;
      let checkedOut = false;
      const outcomes: Array<{ bump: PendingBump; change: ImageTagChange }> = [];
      const failed: PendingBump[] = [];
      for (const bump of live) {
        let text: string | undefined;
        let previousTag: string | undefined;
        let sameDigest = true;
        let edited: string;
        try {
          text = await fileAt(head, bump.filePath);
          const doc = text === undefined ? undefined : parseTagFile(text, bump.filePath);
          previousTag = doc && imageTagOf(doc, bump.filePath);
          if (bump.digest !== undefined) sameDigest = (doc ? (scalarOf(doc, IMAGE_DIGEST_KEY, bump.filePath) ?? '') : '') === bump.digest;
          edited = withImageTag(text, bump.tag, bump.filePath, bump.digest, bump.promoteDeployment);
        } catch (err) {
          // A file this bump cannot read fails this bump alone; nothing of it is in the worktree yet.
          bump.reject(err);
          failed.push(bump);
          continue;
        }
        if (previousTag === bump.tag && sameDigest) {
          outcomes.push({ bump, change: { ...(await commitThatSet(head, bump.filePath, bump.tag)), changed: false } });
          continue;
        }
        if (!checkedOut) {
          if (worktreeAt !== base) {
            // A checkout cut short leaves the branch and the worktree anywhere: nothing is known until a commit.
            worktreeAt = undefined;
            await run(['checkout', '--force', '-B', branch, base]);
          }
          checkedOut = true;
        }
        worktreeAt = undefined;
        await writeWorktreeFile(bump.filePath, edited);
        // `commit -- <path>` takes the file as it is in the worktree; only a new file needs adding first.
        if (text === undefined) await run(['add', '--verbose', '--', bump.filePath]);
        const summary = await run(['commit', '--no-verify', '-m', bump.message, '--', bump.filePath]);
        const parent = head;
        head = COMMIT_SUMMARY.exec(summary)?.[1] ?? (await run(['rev-parse', '--verify', 'HEAD^{commit}'])).trim();
        worktreeAt = head;
        madeHere.set(head, { parent, changed: bump.filePath });
        filesAt.set(`${head}:${bump.filePath}`, edited);
        outcomes.push({ bump, change: { chartsCommit: head, previousTag, changed: true } });
      }
      live = live.filter((bump) => !failed.includes(bump));
      const settle = () => {
        // Each commit of the chain is in the history of the pushed head: the Argo CD wait asks exactly that.
        for (const { change } of outcomes) if (change.changed) ancestries.set(`${change.chartsCommit}..${head}`, true);
        outcomes.forEach(({ bump, change }) => bump.resolve(change));
      };
      if (head === base) return settle();

      await options.beforePush?.(attempt);
      try {
        await run(['push', '--verbose', '--no-verify', 'origin', `${head}:refs/heads/${branch}`]);
        lastLook = { look: ++looks, tip: head };
        return settle();
      } catch (pushError) {
        const tip = await lookAtRemote();
        // The push may have landed even though its answer was lost.
        if (await landedOnRemote(head, tip)) return settle();
        // The branch did not move, so no other writer is to blame: a rule of the remote's, authentication, the network.
        if (tip === base) throw refusalByPolicy(pushError, branch) ?? pushError;
        if (attempt >= maxPushAttempts) {
          for (const bump of live) {
            bump.reject(new Error(`could not push the image tag change to ${bump.filePath} on ${branch}: other commits landed first ${attempt} times in a row`));
          }
          return;
        }
        await sleep(pushBackoffMs(attempt));
      }
    }
  }

  return {
    async readImageTag(app, environment) {
      const filePath = imageTagPath(catalogueView, app, environment);
      const since = looks;
      return serialised(workdir, async (): Promise<ImageTagFile> => {
        await openWorkdir();
        const tip = await tipSince(since);
        const text = await fileAt(tip, filePath);
        if (text === undefined) return { path: filePath, exists: false, automaticDeploysEnabled: true };
        const doc = parseTagFile(text, filePath);
        return { path: filePath, exists: true, imageTag: imageTagOf(doc, filePath), ...freezeFlagIn(doc, filePath) };
      });
    },

    async setImageTag(app, environment, tag, message, digest, promoteDeployment) {
      const filePath = imageTagPath(catalogueView, app, environment);
      validateImageTag(tag);
      validateCommitMessage(message);
      if (digest !== undefined && digest !== '' && !isImageDigest(digest)) throw new InvalidNameError(`invalid image digest ${JSON.stringify(digest)}`);
      return new Promise<ImageTagChange>((resolve, reject) => {
        pendingBumps.push({ filePath, tag, message, digest, promoteDeployment, since: looks, resolve, reject });
        // The first flush to run takes every bump waiting by then; the flushes queued after it find none left.
        void serialised(workdir, flushBumps);
      });
    },

    async promotionFlagsAt(app, environment, commit) {
      const filePath = imageTagPath(catalogueView, app, environment);
      if (!isFullSha(commit)) throw new InvalidNameError(`invalid commit ${JSON.stringify(commit)}: give a full 40-character lower-case SHA`);
      const since = looks;
      return serialised(workdir, async () => {
        await openWorkdir();
        let text: string | undefined;
        try {
          text = await fileAt(commit, filePath);
        } catch (err) {
          if (!(err instanceof GitCommandError)) throw err;
          // A commit this clone has not fetched yet.
          await tipSince(since);
          text = await fileAt(commit, filePath);
        }
        const doc = text === undefined ? undefined : parseTagFile(text, filePath);
        return { promoteDeployment: saysTrue(doc, PROMOTE_KEY), automaticDeploysEnabled: saysTrue(doc, AUTOMATIC_DEPLOYS_KEY) };
      });
    },

    async imageTagHistory(app, environment, limit) {
      const filePath = imageTagPath(catalogueView, app, environment);
      if (!Number.isSafeInteger(limit) || limit < 1) throw new InvalidNameError(`invalid limit ${JSON.stringify(limit)}: give a whole number from 1`);
      const since = looks;
      return serialised(workdir, async (): Promise<ImageTagCommit[]> => {
        await openWorkdir();
        const tip = await tipSince(since);
        // Unit separators: an author's name or a subject may hold anything printable.
        const log = await run(['log', `--max-count=${limit}`, '--format=%H%x1f%cI%x1f%an%x1f%s', tip, '--', filePath]);
        const commits: ImageTagCommit[] = [];
        for (const line of log.split('\n').filter(Boolean)) {
          const [commit = '', at = '', author = '', subject = ''] = line.split('\x1f');
          // A version of the file nobody can parse still happened: it is listed without a tag.
          const tag = await imageTagAt(commit, filePath).catch(() => undefined);
          commits.push({ commit, at, author, subject, ...(tag !== undefined ? { tag } : {}) });
        }
        return commits;
      });
    },

    async isAncestor(ancestor, descendant) {
      for (const sha of [ancestor, descendant]) {
        if (typeof sha !== 'string' || !isFullSha(sha)) {
          throw new InvalidNameError(`invalid commit ${JSON.stringify(sha)}: give a full 40-character lower-case SHA`);
        }
      }
      const since = looks;
      return serialised(workdir, async () => {
        await openWorkdir();
        // Ancestry never changes: when this clone has both commits, there is nothing to fetch.
        const known = await knownAncestry(ancestor, descendant);
        if (known !== undefined) return known;
        await tipSince(since);
        return (await knownAncestry(ancestor, descendant)) ?? false;
      });
    },
  };
}
