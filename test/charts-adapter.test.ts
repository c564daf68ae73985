/** The production charts adapter against real bare git repositories in temporary folders. */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import { createGitChartsRepository, gitChildEnvironment, splitRemoteCredentials, type GitChartsRepositoryOptions } from '../adapters/charts-git';
import { PushRefusedError } from '../common/errors';
import { InvalidNameError } from '../common/names';
import type { ChartsRepository } from '../common/ports';
import { startGitHttpServer } from '../simulators/git-http';
import { competingWriter, createChartsRepo, headOf, listCommits, listFiles, parentOf, readFileAt } from './support/charts-repo';

const STAGING = 'charts/app-config/image-tags/staging/whitehall';
const PRODUCTION = 'charts/app-config/image-tags/production/whitehall';
const INTEGRATION = 'charts/app-config/image-tags/integration/whitehall';

const STAGING_V1 = `# Image tag for whitehall in staging. Written by the deploy pipeline.
image_tag: v1 # the running release
promote_deployment: true
automatic_deploys_enabled: true
`;

let tmp: string;
let bare: string;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'charts-adapter-'));
  bare = await createChartsRepo(tmp, {
    [STAGING]: STAGING_V1,
    [INTEGRATION]: 'image_tag: v1\n',
  });
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The files a commit changed against its parent. */
async function changedFiles(sha: string): Promise<string[]> {
  const out = await simpleGit(bare).raw(['diff', '--name-only', `${sha}^`, sha]);
  return out.split('\n').filter(Boolean);
}

function adapter(workdirName = 'worker', options: Partial<GitChartsRepositoryOptions> = {}): ChartsRepository {
  return createGitChartsRepository({
    remoteUrl: bare,
    workdir: path.join(tmp, workdirName),
    author: { name: 'Deploy Pipeline', email: 'deploy@example.com' },
    ...options,
  });
}

describe('setImageTag', () => {
  test('commits exactly one commit that changes only the tag, keeping other keys and comments', async () => {
    const before = await listCommits(bare);

    const change = await adapter().setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');

    const after = await listCommits(bare);
    expect(after).toHaveLength(before.length + 1);
    expect(after[0]).toEqual({ sha: change.chartsCommit, subject: 'Deploy whitehall v2 to staging' });
    expect(change).toEqual({ chartsCommit: await headOf(bare), previousTag: 'v1', changed: true });
    expect(await readFileAt(bare, 'main', STAGING)).toBe(STAGING_V1.replace('image_tag: v1', 'image_tag: v2'));
    expect(await parentOf(bare, change.chartsCommit)).toBe(before[0]!.sha);
  });

  test('writes the digest on the line after the tag, then changes it in place; an empty one leaves the tag to decide', async () => {
    const first = `sha256:${'a'.repeat(64)}`;
    const second = `sha256:${'b'.repeat(64)}`;
    const change = await adapter().setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging', first);
    expect(change).toMatchObject({ previousTag: 'v1', changed: true });
    expect(await readFileAt(bare, 'main', STAGING)).toBe(STAGING_V1.replace('image_tag: v1 # the running release\n', `image_tag: v2 # the running release\nimage_digest: ${first}\n`));
    // The same tag and digest again: nothing to commit.
    await expect(adapter().setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging', first)).resolves.toMatchObject({ changed: false });

    await adapter().setImageTag('whitehall', 'staging', 'v3', 'Deploy whitehall v3 to staging', second);
    expect(await readFileAt(bare, 'main', STAGING)).toBe(STAGING_V1.replace('image_tag: v1 # the running release\n', `image_tag: v3 # the running release\nimage_digest: ${second}\n`));
    await adapter().setImageTag('whitehall', 'staging', 'v1', 'Roll back whitehall to v1 in staging', '');
    expect(await readFileAt(bare, 'main', STAGING)).toBe(STAGING_V1.replace('image_tag: v1 # the running release\n', `image_tag: v1 # the running release\nimage_digest: ""\n`));
    // Without a digest, one already in the file stays as it is.
    await adapter().setImageTag('whitehall', 'staging', 'v4', 'Deploy whitehall v4 to staging');
    expect(await readFileAt(bare, 'main', STAGING)).toContain('image_tag: v4 # the running release\nimage_digest: ""\n');
    await expect(adapter().setImageTag('whitehall', 'staging', 'v5', 'Deploy whitehall v5 to staging', 'sha256:short')).rejects.toThrow(InvalidNameError);
  });

  test('a second identical call makes no commit and returns the same answer, from any workdir', async () => {
    const first = await adapter().setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');
    const commits = await listCommits(bare);

    const again = await adapter().setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');
    // A worker that crashed after pushing restarts with a fresh clone.
    const elsewhere = await adapter('restarted-worker').setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');

    const expected = { chartsCommit: first.chartsCommit, previousTag: 'v1', changed: false };
    expect(again).toEqual(expected);
    expect(elsewhere).toEqual(expected);
    expect(await listCommits(bare)).toEqual(commits);
  });

  test('a retry still finds the commit that set the tag after someone edited another key', async () => {
    const first = await adapter().setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');
    const writer = await competingWriter(bare, tmp);
    const frozen = STAGING_V1.replace('image_tag: v1', 'image_tag: v2').replace('automatic_deploys_enabled: true', 'automatic_deploys_enabled: false');
    await writer.push({ [STAGING]: frozen }, 'Freeze whitehall in staging');

    const retry = await adapter().setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');

    expect(retry).toEqual({ chartsCommit: first.chartsCommit, previousTag: 'v1', changed: false });
  });

  test('creates a missing file and its folders', async () => {
    const change = await adapter().setImageTag('whitehall', 'production', 'v2', 'Deploy whitehall v2 to production');

    expect(change).toEqual({ chartsCommit: await headOf(bare), previousTag: undefined, changed: true });
    expect(await readFileAt(bare, 'main', PRODUCTION)).toBe('image_tag: v2\n');
  });

  test('quotes a tag that YAML would read as a number, and reads it back as written', async () => {
    const charts = adapter();
    await charts.setImageTag('whitehall', 'integration', '1234567', 'Deploy whitehall 1234567 to integration');

    expect(await readFileAt(bare, 'main', INTEGRATION)).toBe('image_tag: "1234567"\n');
    await expect(charts.readImageTag('whitehall', 'integration')).resolves.toMatchObject({ imageTag: '1234567' });
  });

  test('another writer pushing between our fetch and our push: we rebuild on top of it and lose nothing', async () => {
    const writer = await competingWriter(bare, tmp);
    const initial = await headOf(bare);
    const charts = adapter('worker', {
      beforePush: async (attempt) => {
        if (attempt <= 2) await writer.push();
      },
    });

    const change = await charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');

    expect(change.changed).toBe(true);
    const commits = await listCommits(bare);
    expect(commits.map((c) => c.subject)).toEqual(['Deploy whitehall v2 to staging', 'Competing change 2', 'Competing change 1', 'Initial charts']);
    expect(commits[0]!.sha).toBe(change.chartsCommit);
    expect(commits[3]!.sha).toBe(initial);
    expect(await readFileAt(bare, 'main', STAGING)).toContain('image_tag: v2');
    const competingFiles = await listFiles(bare);
    expect(competingFiles.filter((f) => f.startsWith('notes/'))).toHaveLength(2);
  });

  test('a writer that sets the same tag first wins: we push nothing and report its commit', async () => {
    const writer = await competingWriter(bare, tmp);
    let theirs = '';
    const charts = adapter('worker', {
      beforePush: async (attempt) => {
        if (attempt === 1) theirs = await writer.push({ [STAGING]: 'image_tag: v2\n' }, 'Deploy whitehall v2 to staging by hand');
      },
    });

    const change = await charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');

    expect(change).toEqual({ chartsCommit: theirs, previousTag: 'v1', changed: false });
    expect(await headOf(bare)).toBe(theirs);
  });

  test('gives up with a clear error after maxPushAttempts lost races', async () => {
    const writer = await competingWriter(bare, tmp);
    const charts = adapter('worker', { maxPushAttempts: 3, beforePush: async () => void (await writer.push()) });

    await expect(charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging')).rejects.toThrow(
      /could not push .*staging\/whitehall on main: other commits landed first 3 times in a row/,
    );
    expect((await listCommits(bare)).map((c) => c.subject)).not.toContain('Deploy whitehall v2 to staging');
    expect(writer.pushes).toBe(3);
  });

  test('a push refused for another reason fails at once with git’s message', async () => {
    const hook = path.join(bare, 'hooks', 'pre-receive');
    await writeFile(hook, '#!/bin/sh\necho "charts are frozen today" >&2\nexit 1\n');
    await chmod(hook, 0o755);
    const attempts: number[] = [];
    const charts = adapter('worker', { beforePush: async (attempt) => void attempts.push(attempt) });

    await expect(charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging')).rejects.toThrow(/charts are frozen today/);
    expect(attempts).toEqual([1]);
  });

  test('branch protection refuses for good, and says so', async () => {
    // What GitHub's pre-receive answers for a protected branch.
    const hook = path.join(bare, 'hooks', 'pre-receive');
    await writeFile(
      hook,
      '#!/bin/sh\necho "error: GH006: Protected branch update failed for refs/heads/main." >&2\necho "error: Changes must be made through a pull request." >&2\nexit 1\n',
    );
    await chmod(hook, 0o755);
    const before = await listCommits(bare);

    const err = await adapter().setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging').catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PushRefusedError);
    expect((err as Error).message).toMatch(/^the charts repository refused our push: branch protection on main\. Let the deploy identity push to main/);
    expect((err as Error).message).toContain('GH006: Protected branch update failed');
    expect(await listCommits(bare)).toEqual(before);
  });

  test('two workers racing on one remote both land their commit', async () => {
    const first = adapter('worker-a');
    const second = adapter('worker-b');

    const [a, b] = await Promise.all([
      first.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging'),
      second.setImageTag('whitehall', 'production', 'v2', 'Deploy whitehall v2 to production'),
    ]);

    expect(a.changed && b.changed).toBe(true);
    const subjects = (await listCommits(bare)).map((c) => c.subject);
    expect(subjects).toHaveLength(3);
    expect(subjects).toEqual(expect.arrayContaining(['Deploy whitehall v2 to staging', 'Deploy whitehall v2 to production']));
    expect(await readFileAt(bare, 'main', STAGING)).toContain('image_tag: v2');
    expect(await readFileAt(bare, 'main', PRODUCTION)).toBe('image_tag: v2\n');
  });

  test('calls on one workdir at once are serialised', async () => {
    const charts = adapter();

    const [staging, production, read] = await Promise.all([
      charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging'),
      charts.setImageTag('whitehall', 'production', 'v3', 'Deploy whitehall v3 to production'),
      charts.readImageTag('whitehall', 'integration'),
    ]);

    expect(staging.changed && production.changed).toBe(true);
    expect(read.imageTag).toBe('v1');
    expect((await listCommits(bare)).map((c) => c.subject)).toEqual([
      'Deploy whitehall v3 to production',
      'Deploy whitehall v2 to staging',
      'Initial charts',
    ]);
  });

  test('bumps asked for at once land as one commit each, in one push', async () => {
    const pushes: number[] = [];
    const charts = adapter('worker', { beforePush: async (attempt) => void pushes.push(attempt) });
    const before = await headOf(bare);

    const changes = await Promise.all([
      charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging'),
      charts.setImageTag('whitehall', 'production', 'v3', 'Deploy whitehall v3 to production'),
      charts.setImageTag('whitehall', 'integration', 'v4', 'Deploy whitehall v4 to integration'),
    ]);

    expect(pushes).toEqual([1]);
    expect(changes.map((c) => [c.previousTag, c.changed])).toEqual([
      ['v1', true],
      [undefined, true],
      ['v1', true],
    ]);
    // A chain: each commit on the one before, each changing its own file only, the last one the branch's tip.
    expect(await parentOf(bare, changes[0]!.chartsCommit)).toBe(before);
    expect(await parentOf(bare, changes[1]!.chartsCommit)).toBe(changes[0]!.chartsCommit);
    expect(await parentOf(bare, changes[2]!.chartsCommit)).toBe(changes[1]!.chartsCommit);
    expect(await headOf(bare)).toBe(changes[2]!.chartsCommit);
    expect(await changedFiles(changes[0]!.chartsCommit)).toEqual([STAGING]);
    expect(await changedFiles(changes[1]!.chartsCommit)).toEqual([PRODUCTION]);
    expect(await changedFiles(changes[2]!.chartsCommit)).toEqual([INTEGRATION]);

    // Asked again (a retried activity), each finds its own commit and makes none.
    const again = await Promise.all([
      charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging'),
      charts.setImageTag('whitehall', 'production', 'v3', 'Deploy whitehall v3 to production'),
    ]);
    expect(again).toEqual([
      { chartsCommit: changes[0]!.chartsCommit, previousTag: 'v1', changed: false },
      { chartsCommit: changes[1]!.chartsCommit, previousTag: undefined, changed: false },
    ]);
    expect(pushes).toEqual([1]);
  });

  test('in a batch, a file that cannot be read fails its own bump and the others land', async () => {
    const writer = await competingWriter(bare, tmp);
    await writer.push({ [PRODUCTION]: 'image_tag: [not, a, tag]\n' }, 'Break production by hand');
    const charts = adapter();

    const [staging, production] = await Promise.allSettled([
      charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging'),
      charts.setImageTag('whitehall', 'production', 'v2', 'Deploy whitehall v2 to production'),
    ]);

    expect(staging.status).toBe('fulfilled');
    expect(production.status).toBe('rejected');
    expect(String((production as PromiseRejectedResult).reason)).toMatch(/image_tag/);
    expect((await listCommits(bare)).map((c) => c.subject)).toEqual(['Deploy whitehall v2 to staging', 'Break production by hand', 'Initial charts']);
  });

  test('a batch that loses the race to another writer lands whole on the new tip', async () => {
    const writer = await competingWriter(bare, tmp);
    const charts = adapter('worker', {
      beforePush: async (attempt) => {
        if (attempt <= 2) await writer.push();
      },
    });

    const changes = await Promise.all([
      charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging'),
      charts.setImageTag('whitehall', 'production', 'v2', 'Deploy whitehall v2 to production'),
    ]);

    const subjects = (await listCommits(bare)).map((c) => c.subject);
    expect(subjects.slice(0, 2)).toEqual(['Deploy whitehall v2 to production', 'Deploy whitehall v2 to staging']);
    expect(subjects.filter((subject) => subject.startsWith('Deploy whitehall'))).toHaveLength(2);
    expect(await headOf(bare)).toBe(changes[1]!.chartsCommit);
    expect(await parentOf(bare, changes[1]!.chartsCommit)).toBe(changes[0]!.chartsCommit);
  });

  test.each([
    ['../whitehall', 'staging', 'v2'],
    ['whitehall', '../staging', 'v2'],
    ['whitehall', 'staging', '../v2'],
    ['whitehall', 'staging', 'v2/../../x'],
  ])('refuses app %j, environment %j, tag %j before any git command', async (app, environment, tag) => {
    const workdir = path.join(tmp, 'untouched');
    const charts = createGitChartsRepository({ remoteUrl: bare, workdir });
    const commits = await listCommits(bare);

    await expect(charts.setImageTag(app, environment, tag, `Deploy ${app} ${tag} to ${environment}`)).rejects.toBeInstanceOf(InvalidNameError);
    if (tag === 'v2') await expect(charts.readImageTag(app, environment)).rejects.toBeInstanceOf(InvalidNameError);

    expect(existsSync(workdir)).toBe(false);
    expect(await listCommits(bare)).toEqual(commits);
  });
});

test('credentials in the remote URL never appear in an error', async () => {
  const charts = createGitChartsRepository({
    remoteUrl: 'http://deploy-bot:s3cr3t-token@127.0.0.1:9/charts.git',
    workdir: path.join(tmp, 'worker'),
  });

  const err = await charts.readImageTag('whitehall', 'staging').catch((e: unknown) => e);

  expect(err).toBeInstanceOf(Error);
  expect((err as Error).message).toMatch(/git ls-remote failed/);
  expect((err as Error).message).not.toContain('s3cr3t-token');
});

describe('credentials for an http remote', () => {
  test('reach git through a credential helper, never through .git/config or a command line', async () => {
    const token = `ghs_${randomBytes(18).toString('hex')}`;
    const server = await startGitHttpServer({ root: path.dirname(bare), username: 'deploy-bot', password: token });
    try {
      const workdir = path.join(tmp, 'worker');
      // A clone set up before this change kept the token in its remote URL: opening it again cleans it.
      await simpleGit().raw(['init', '--quiet', workdir]);
      await simpleGit(workdir).raw(['remote', 'add', 'origin', `http://deploy-bot:${token}@127.0.0.1:9/old.git`]);
      const commands: string[] = [];
      const charts = adapter('worker', {
        remoteUrl: `http://deploy-bot:${token}@${server.url.replace('http://', '')}/${path.basename(bare)}`,
        onGitCommand: (args) => commands.push(args.join(' ')),
      });
      const before = await listCommits(bare);

      const change = await charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');

      expect(await listCommits(bare)).toEqual([{ sha: change.chartsCommit, subject: 'Deploy whitehall v2 to staging' }, ...before]);
      // The server asked (401), and git answered with the helper's credentials.
      expect(server.requests.some((r) => !r.authorised)).toBe(true);
      expect(server.requests.some((r) => r.authorised && r.method === 'POST' && r.path.endsWith('/git-receive-pack'))).toBe(true);
      expect(commands.length).toBeGreaterThan(0);
      expect(commands.filter((command) => command.includes(token))).toEqual([]);
      const config = readFileSync(path.join(workdir, '.git', 'config'), 'utf8');
      expect(config).not.toContain(token);
      expect(config).toContain(`url = ${server.url}/${path.basename(bare)}`);
    } finally {
      await server.close();
    }
  });

  test('a wrong token fails at once with the answer, not a prompt, and the token stays out of the message', async () => {
    const server = await startGitHttpServer({ root: path.dirname(bare), username: 'deploy-bot', password: 'the-right-one' });
    try {
      const wrong = `ghs_${randomBytes(18).toString('hex')}`;
      const charts = adapter('worker', { remoteUrl: `http://deploy-bot:${wrong}@${server.url.replace('http://', '')}/${path.basename(bare)}` });
      const err = await charts.readImageTag('whitehall', 'staging').catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/git ls-remote failed/);
      expect((err as Error).message).toMatch(/Authentication failed|401|could not read Username/);
      expect((err as Error).message).not.toContain(wrong);
    } finally {
      await server.close();
    }
  });

  test('git processes get only what git needs of the worker\'s environment', () => {
    const parent = {
      PATH: '/usr/bin',
      HOME: '/home/worker',
      LANG: 'C.UTF-8',
      HTTPS_PROXY: 'http://proxy:3128',
      GITHUB_TOKEN: 'ghp_secret',
      ARGOCD_TOKEN: 'argo-secret',
      AWS_SECRET_ACCESS_KEY: 'aws-secret',
      RELEASE_TOKEN: 'release-secret',
      GIT_DIR: '/elsewhere',
    };
    expect(gitChildEnvironment(parent, undefined)).toEqual({ PATH: '/usr/bin', HOME: '/home/worker', LANG: 'C.UTF-8', HTTPS_PROXY: 'http://proxy:3128', GIT_TERMINAL_PROMPT: '0' });
    expect(gitChildEnvironment(parent, { username: 'bot', password: 'tok' })).toMatchObject({ DEPLOY_CHARTS_USERNAME: 'bot', DEPLOY_CHARTS_PASSWORD: 'tok' });
  });

  test.each([
    ['https://bot:tok%2Fen@github.com/alphagov/govuk-helm-charts.git', 'https://github.com/alphagov/govuk-helm-charts.git', { username: 'bot', password: 'tok/en' }],
    ['https://ghs_abc@github.com/o/r.git', 'https://github.com/o/r.git', { username: 'x-access-token', password: 'ghs_abc' }],
    ['https://github.com/o/r.git', 'https://github.com/o/r.git', undefined],
    ['git@github.com:o/r.git', 'git@github.com:o/r.git', undefined],
  ])('takes the credentials out of %s', (remote, url, credentials) => {
    expect(splitRemoteCredentials(remote)).toEqual(credentials ? { url, credentials } : { url });
  });
});

describe('git processes spared', () => {
  /** The git subcommands an adapter runs during `work`. */
  async function commandsDuring(log: string[][], work: () => Promise<unknown>): Promise<string[]> {
    const from = log.length;
    await work();
    return log.slice(from).map((args) => args[0]!);
  }

  test('a bump on top of our own last push checks nothing out; one on top of another writer does', async () => {
    const log: string[][] = [];
    const charts = adapter('worker', { onGitCommand: (args) => log.push([...args]) });
    await charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');

    const second = await commandsDuring(log, () => charts.setImageTag('whitehall', 'production', 'v2', 'Deploy whitehall v2 to production'));
    expect(second).toContain('commit');
    expect(second).not.toContain('checkout');

    const theirs = await (await competingWriter(bare, tmp)).push();
    const third = await commandsDuring(log, () => charts.setImageTag('whitehall', 'integration', 'v2', 'Deploy whitehall v2 to integration'));
    expect(third).toContain('checkout');
    const head = await headOf(bare);
    expect(await parentOf(bare, head)).toBe(theirs);
    // Nothing of the earlier bumps was lost, and each commit changed its one file.
    expect(await readFileAt(bare, head, STAGING)).toContain('image_tag: v2');
    expect(await readFileAt(bare, head, PRODUCTION)).toBe('image_tag: v2\n');
    expect(await readFileAt(bare, head, INTEGRATION)).toBe('image_tag: v2\n');
    expect(await changedFiles(head)).toEqual([INTEGRATION]);
  });

  test('a worktree left dirty by a bump cut short is checked out afresh', async () => {
    const log: string[][] = [];
    const workdir = 'worker';
    const charts = adapter(workdir, { onGitCommand: (args) => log.push([...args]) });
    await charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');
    // The next bump fails after its file is written, as a crash there would leave it: git finds its index locked.
    await writeFile(path.join(tmp, workdir, '.git', 'index.lock'), '');
    await expect(charts.setImageTag('whitehall', 'production', 'v2', 'Deploy whitehall v2 to production')).rejects.toThrow(/index\.lock|git (add|commit)/);
    await rm(path.join(tmp, workdir, '.git', 'index.lock'));

    const retry = await commandsDuring(log, () => charts.setImageTag('whitehall', 'integration', 'v3', 'Deploy whitehall v3 to integration'));
    expect(retry).toContain('checkout');
    const head = await headOf(bare);
    // The half-made bump left nothing behind: only the file of the bump that landed changed.
    expect(await changedFiles(head)).toEqual([INTEGRATION]);
    expect(await listFiles(bare, head)).not.toContain(PRODUCTION);
  });

  test('ancestry down a chain of our own commits needs no git', async () => {
    const log: string[][] = [];
    const charts = adapter('worker', { onGitCommand: (args) => log.push([...args]) });
    const initial = await headOf(bare);
    const first = (await charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging')).chartsCommit;
    await charts.setImageTag('whitehall', 'integration', 'v2', 'Deploy whitehall v2 to integration');
    const third = (await charts.setImageTag('whitehall', 'production', 'v2', 'Deploy whitehall v2 to production')).chartsCommit;

    expect(await commandsDuring(log, async () => expect(await charts.isAncestor(first, third)).toBe(true))).toEqual([]);
    // Below our own commits, and backwards, git still answers.
    expect(await charts.isAncestor(initial, third)).toBe(true);
    expect(await charts.isAncestor(third, first)).toBe(false);
  });

  test("a commit's SHA is read from what git commit printed, not asked for again", async () => {
    const log: string[][] = [];
    const charts = adapter('worker', { onGitCommand: (args) => log.push([...args]) });
    await charts.readImageTag('whitehall', 'staging');

    const commands = await commandsDuring(log, async () => {
      const change = await charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');
      expect(change.chartsCommit).toBe(await headOf(bare));
    });
    expect(commands).toEqual(['ls-remote', 'checkout', 'commit', 'push']);
  });

  test('the remote at a commit this clone holds needs no fetch; one written by another is fetched', async () => {
    const log: string[][] = [];
    const charts = adapter('worker', { onGitCommand: (args) => log.push([...args]) });
    await charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');
    await charts.setImageTag('whitehall', 'production', 'v2', 'Deploy whitehall v2 to production');

    // The remote is at our own push.
    expect(await commandsDuring(log, () => charts.readImageTag('whitehall', 'staging'))).toEqual(['ls-remote']);
    expect((await charts.readImageTag('whitehall', 'staging')).imageTag).toBe('v2');

    const writer = await competingWriter(bare, tmp);
    await writer.push({ [STAGING]: 'image_tag: v9\n' }, 'Someone else deploys whitehall v9 to staging');
    const afterTheirs = await commandsDuring(log, async () => expect((await charts.readImageTag('whitehall', 'staging')).imageTag).toBe('v9'));
    expect(afterTheirs).toEqual(expect.arrayContaining(['ls-remote', 'fetch']));
    // Their commit is now held here: the next look fetches nothing.
    expect(await commandsDuring(log, () => charts.readImageTag('whitehall', 'staging'))).toEqual(['ls-remote']);
  });

  test('a charts repository without the branch is a clear error, and nothing is written', async () => {
    const charts = adapter('worker', { branch: 'release' });
    const before = await listCommits(bare);

    await expect(charts.readImageTag('whitehall', 'staging')).rejects.toThrow('the charts repository has no branch release');
    await expect(charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging')).rejects.toThrow('the charts repository has no branch release');
    expect(await listCommits(bare)).toEqual(before);
  });
});

describe('files shaped as GOV.UK keeps them', () => {
  // Every layout of govuk-helm-charts' charts/app-config/image-tags/<env>/<app> files, and what people's editors add.
  const SHAPES: [string, string][] = [
    ['image_tag, automatic_deploys_enabled, promote_deployment', 'image_tag: v3231\nautomatic_deploys_enabled: true\npromote_deployment: true\n'],
    ['image_tag, promote_deployment, automatic_deploys_enabled', 'image_tag: v3231\npromote_deployment: true\nautomatic_deploys_enabled: true\n'],
    ['image_tag, automatic_deploys_enabled', 'image_tag: v3231\nautomatic_deploys_enabled: true\n'],
    ['image_tag, promote_deployment', 'image_tag: v3231\npromote_deployment: false\n'],
    ['image_tag latest', 'image_tag: latest\nautomatic_deploys_enabled: false\npromote_deployment: false\n'],
    ['CRLF line endings', 'image_tag: v3231\r\nautomatic_deploys_enabled: true\r\npromote_deployment: true\r\n'],
    ['no newline at the end', 'image_tag: v3231\npromote_deployment: true'],
    ['comments and odd spacing', '# whitehall in staging\nimage_tag:    v3231   # pinned by hand\n\npromote_deployment:  true\n'],
    ['image_tag after the flags', 'automatic_deploys_enabled: true\npromote_deployment: true\nimage_tag: v3231\n'],
    ['a quoted tag', 'image_tag: "v3231"\npromote_deployment: true\n'],
  ];

  test.each(SHAPES)('%s: the bump changes the tag and not one other byte', async (_shape, text) => {
    const writer = await competingWriter(bare, tmp);
    await writer.push({ [PRODUCTION]: text }, 'A file as GOV.UK has it');
    for (const tag of ['v3232', 'latest', 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678']) {
      const change = await adapter().setImageTag('whitehall', 'production', tag, `Deploy whitehall ${tag} to production`);
      const before = (await readFileAt(bare, `${change.chartsCommit}^`, PRODUCTION))!;
      const oldTag = /image_tag: *"?([^"\s]+)/.exec(before)![1]!;
      const at = before.indexOf(oldTag, before.indexOf('image_tag:'));
      expect(await readFileAt(bare, change.chartsCommit, PRODUCTION)).toBe(`${before.slice(0, at)}${tag}${before.slice(at + oldTag.length)}`);
    }
  });

  test('an empty file, a file without image_tag, and an empty image_tag get a valid tag line', async () => {
    const writer = await competingWriter(bare, tmp);
    for (const [text, expected] of [
      ['', 'image_tag: v7\n'],
      ['promote_deployment: true\n', 'image_tag: v7\npromote_deployment: true\n'],
      ['promote_deployment: true\r\n', 'image_tag: v7\r\npromote_deployment: true\r\n'],
      ['image_tag:\npromote_deployment: true\n', 'image_tag: v7\npromote_deployment: true\n'],
      ['image_tag: ~\n', 'image_tag: v7\n'],
    ]) {
      await writer.push({ [PRODUCTION]: text }, 'Reset the file');
      const change = await adapter().setImageTag('whitehall', 'production', 'v7', 'Deploy whitehall v7 to production');
      expect(await readFileAt(bare, change.chartsCommit, PRODUCTION)).toBe(expected);
    }
  });

  /**
   * The file as GOV.UK's update-image-tag leaves it (`yq -i` of image_tag, then of promote_deployment: a missing
   * key at the end), written by hand: the tag replaced where it stands, the flag's value replaced unless it says
   * exactly that already, every other byte as before.
   */
  function asUpdateImageTagWrites(before: string, tag: string, promote: boolean): string {
    const oldTag = /image_tag: *"?([^"\s]+)/.exec(before)![1]!;
    const at = before.indexOf(oldTag, before.indexOf('image_tag:'));
    const tagged = `${before.slice(0, at)}${tag}${before.slice(at + oldTag.length)}`;
    const flag = /^(promote_deployment: *)(["']?)([^"'\s#]*)\2/m.exec(tagged);
    if (flag) {
      if (flag[3]!.toLowerCase() === String(promote)) return tagged;
      const from = flag.index + flag[1]!.length + flag[2]!.length;
      return `${tagged.slice(0, from)}${promote}${tagged.slice(from + flag[3]!.length)}`;
    }
    const eol = tagged.includes('\r\n') ? '\r\n' : '\n';
    return `${tagged}${tagged.endsWith('\n') ? '' : eol}promote_deployment: ${promote}${eol}`;
  }

  test.each(SHAPES)('%s: a bump with promote_deployment changes that line and the tag, and not one other byte', async (_shape, text) => {
    const writer = await competingWriter(bare, tmp);
    await writer.push({ [PRODUCTION]: text }, 'A file as GOV.UK has it');
    const manual = [false, true, true, false] as const;
    for (const [index, tag] of ['v3232', 'v3233', 'latest', 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678'].entries()) {
      const promote = manual[index]!;
      const change = await adapter().setImageTag('whitehall', 'production', tag, `Deploy whitehall ${tag} to production`, undefined, promote);
      expect(change.changed).toBe(true);
      expect(await changedFiles(change.chartsCommit)).toEqual([PRODUCTION]);
      const before = (await readFileAt(bare, `${change.chartsCommit}^`, PRODUCTION))!;
      expect(await readFileAt(bare, change.chartsCommit, PRODUCTION)).toBe(asUpdateImageTagWrites(before, tag, promote));
    }
    // update-image-tag never writes automatic_deploys_enabled: the file says about it what it said before.
    const after = (await readFileAt(bare, 'main', PRODUCTION))!;
    expect(after.match(/automatic_deploys_enabled:.*/g)).toEqual(text.match(/automatic_deploys_enabled:.*/g));
  });

  test('promote_deployment: added where missing, rewritten where it says anything but the value, left where it says it', async () => {
    const writer = await competingWriter(bare, tmp);
    for (const [text, promote, expected] of [
      ['', true, 'image_tag: v7\npromote_deployment: true\n'],
      ['automatic_deploys_enabled: false\n', true, 'image_tag: v7\nautomatic_deploys_enabled: false\npromote_deployment: true\n'],
      ['image_tag: v1\r\nautomatic_deploys_enabled: true', false, 'image_tag: v7\r\nautomatic_deploys_enabled: true\r\npromote_deployment: false\r\n'],
      ['image_tag: v1\npromote_deployment: "true" # by hand\n', false, 'image_tag: v7\npromote_deployment: "false" # by hand\n'],
      ["image_tag: v1\npromote_deployment: 'false'\n", true, "image_tag: v7\npromote_deployment: 'true'\n"],
      // Helm reads yes as true, GOV.UK's post-sync compares the text with "true": only the plain word is kept.
      ['image_tag: v1\npromote_deployment: yes\n', false, 'image_tag: v7\npromote_deployment: false\n'],
      ['image_tag: v1\npromote_deployment:\n', false, 'image_tag: v7\npromote_deployment: false\n'],
      ['image_tag: v1\npromote_deployment: True\n', true, 'image_tag: v7\npromote_deployment: True\n'],
      ['image_tag: v1\npromote_deployment: false\nautomatic_deploys_enabled: true\n', false, 'image_tag: v7\npromote_deployment: false\nautomatic_deploys_enabled: true\n'],
    ] as const) {
      await writer.push({ [PRODUCTION]: text }, 'Reset the file');
      const change = await adapter().setImageTag('whitehall', 'production', 'v7', 'Deploy whitehall v7 to production', undefined, promote);
      expect(await readFileAt(bare, change.chartsCommit, PRODUCTION)).toBe(expected);
    }
    // A file that is not there yet: the tag and the flag, nothing else.
    const created = await adapter().setImageTag('whitehall', 'test', 'v7', 'Deploy whitehall v7 to test', undefined, false);
    expect(await readFileAt(bare, created.chartsCommit, 'charts/app-config/image-tags/test/whitehall')).toBe('image_tag: v7\npromote_deployment: false\n');
  });

  test('a file that already holds the tag is left alone, flag included; a retry elsewhere finds the first commit', async () => {
    const writer = await competingWriter(bare, tmp);
    await writer.push({ [PRODUCTION]: 'image_tag: v1\npromote_deployment: true\n' }, 'A file');
    const first = await adapter().setImageTag('whitehall', 'production', 'v2', 'Deploy whitehall v2 to production', undefined, false);
    const commits = await listCommits(bare);
    // The worker died before it heard of its push; another one runs the step again.
    const retry = await adapter('restarted-worker').setImageTag('whitehall', 'production', 'v2', 'Deploy whitehall v2 to production', undefined, false);
    expect(retry).toEqual({ chartsCommit: first.chartsCommit, previousTag: 'v1', changed: false });
    // update-image-tag exits when the tag is already set: a different flag does not make a commit either.
    await expect(adapter().setImageTag('whitehall', 'production', 'v2', 'Deploy whitehall v2 to production', undefined, true)).resolves.toMatchObject({ changed: false });
    expect(await listCommits(bare)).toEqual(commits);
    expect(await readFileAt(bare, 'main', PRODUCTION)).toBe('image_tag: v2\npromote_deployment: false\n');
  });

  test('a tag YAML would read as a number is quoted, keeping the rest', async () => {
    const writer = await competingWriter(bare, tmp);
    await writer.push({ [PRODUCTION]: 'image_tag: v1 # note\r\npromote_deployment: true\r\n' }, 'A file');
    const change = await adapter().setImageTag('whitehall', 'production', '1234567', 'Deploy whitehall 1234567 to production');
    expect(await readFileAt(bare, change.chartsCommit, PRODUCTION)).toBe('image_tag: "1234567" # note\r\npromote_deployment: true\r\n');
    await expect(adapter('another').readImageTag('whitehall', 'production')).resolves.toMatchObject({ imageTag: '1234567' });
  });
});

describe('readImageTag', () => {
  test('reads the tag and an automatic-deploy freeze from the remote branch', async () => {
    const writer = await competingWriter(bare, tmp);
    await writer.push({ [PRODUCTION]: '# frozen for the election\nimage_tag: v7\nautomatic_deploys_enabled: false\n' }, 'Freeze production');

    const charts = adapter();
    await expect(charts.readImageTag('whitehall', 'production')).resolves.toEqual({
      path: PRODUCTION,
      exists: true,
      imageTag: 'v7',
      automaticDeploysEnabled: false,
    });
    await expect(charts.readImageTag('whitehall', 'integration')).resolves.toEqual({
      path: INTEGRATION,
      exists: true,
      imageTag: 'v1',
      automaticDeploysEnabled: true,
    });
  });

  test('a freeze flag that is neither true nor false keeps automatic deploys off and says why', async () => {
    const writer = await competingWriter(bare, tmp);
    const charts = adapter();
    for (const [written, shown] of [
      ['no', '"no"'],
      ['off', '"off"'],
      ['0', '"0"'],
      ['null', 'empty'],
      ['', 'empty'],
      ['yes', '"yes"'],
      ['"maybe"', '"maybe"'],
    ] as const) {
      await writer.push({ [PRODUCTION]: `image_tag: v7\nautomatic_deploys_enabled: ${written}\n` }, `Freeze flag ${written}`);
      await expect(charts.readImageTag('whitehall', 'production')).resolves.toEqual({
        path: PRODUCTION,
        exists: true,
        imageTag: 'v7',
        automaticDeploysEnabled: false,
        freezeFlagProblem: `${PRODUCTION}: automatic_deploys_enabled is ${shown}, neither true nor false; automatic deploys stay off until it says one of them`,
      });
    }
    for (const [written, enabled] of [
      ['true', true],
      ['"true"', true],
      ['False', false],
      ["'false'", false],
    ] as const) {
      await writer.push({ [PRODUCTION]: `automatic_deploys_enabled: ${written}\nimage_tag: v8\n` }, `Freeze flag ${written}`);
      await expect(charts.readImageTag('whitehall', 'production')).resolves.toEqual({ path: PRODUCTION, exists: true, imageTag: 'v8', automaticDeploysEnabled: enabled });
    }
  });

  test('a missing file is reported, with automatic deploys allowed', async () => {
    await expect(adapter().readImageTag('whitehall', 'production')).resolves.toEqual({
      path: PRODUCTION,
      exists: false,
      automaticDeploysEnabled: true,
    });
  });
});

describe('isAncestor', () => {
  test('tells whether a commit is in the history of another', async () => {
    const charts = adapter();
    const initial = await headOf(bare);
    const { chartsCommit } = await charts.setImageTag('whitehall', 'staging', 'v2', 'Deploy whitehall v2 to staging');

    await expect(charts.isAncestor(initial, chartsCommit)).resolves.toBe(true);
    await expect(charts.isAncestor(chartsCommit, chartsCommit)).resolves.toBe(true);
    await expect(charts.isAncestor(chartsCommit, initial)).resolves.toBe(false);
  });

  test('sees commits pushed by others since the last call', async () => {
    const charts = adapter();
    const initial = await headOf(bare);
    await expect(charts.isAncestor(initial, initial)).resolves.toBe(true);
    const theirs = await (await competingWriter(bare, tmp)).push();

    await expect(charts.isAncestor(initial, theirs)).resolves.toBe(true);
  });

  test('an unknown commit is no ancestor and has none', async () => {
    const charts = adapter();
    const initial = await headOf(bare);
    const unknown = 'f'.repeat(40);

    await expect(charts.isAncestor(unknown, initial)).resolves.toBe(false);
    await expect(charts.isAncestor(initial, unknown)).resolves.toBe(false);
  });

  test('refuses anything but full SHAs', async () => {
    const charts = adapter();
    const initial = await headOf(bare);
    await expect(charts.isAncestor('main', initial)).rejects.toBeInstanceOf(InvalidNameError);
    await expect(charts.isAncestor(initial, '--all')).rejects.toBeInstanceOf(InvalidNameError);
  });
});
