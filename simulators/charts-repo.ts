import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { stringify as stringifyYaml } from 'yaml';

/**
 * A real Helm-charts git repository on local disk: a bare repo (what the pipeline clones and Argo CD
 * follows) plus a working clone through which tests and the sandbox push changes of their own.
 */

const run = promisify(execFile);

export interface LocalChartsRepoOptions {
  /** Directory to create the repos in; a new temporary directory by default. */
  parentDir?: string;
  branch?: string;
  /** Files of the first commit, path → content. */
  files?: Record<string, string>;
  chartsPath?: string;
}

export interface LocalChartsRepo {
  /** The bare repository: clone URL for the pipeline, `chartsRepoPath` for the Argo CD simulator. */
  bareDir: string;
  workDir: string;
  branch: string;
  /** Commits and pushes the files (path → content); returns the new commit. */
  commitFiles(files: Record<string, string>, message: string): Promise<string>;
  /** Writes the image-tag YAML for (app, environment) with extra keys kept beside image_tag; returns the commit. */
  writeImageTag(app: string, environment: string, tag: string, extra?: Record<string, unknown>): Promise<string>;
  /** The branch tip of the bare repo, whoever pushed it. */
  tip(): Promise<string>;
  /** A file's content at the bare repo's tip, undefined when absent. */
  readFile(path: string): Promise<string | undefined>;
  remove(): Promise<void>;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Charts Fixture',
  GIT_AUTHOR_EMAIL: 'charts-fixture@example.invalid',
  GIT_COMMITTER_NAME: 'Charts Fixture',
  GIT_COMMITTER_EMAIL: 'charts-fixture@example.invalid',
  GIT_TERMINAL_PROMPT: '0',
};

/** Runs git (as the fixture's author); resolves with its output, trimmed. */
export async function git(args: string[], cwd?: string): Promise<string> {
  const { stdout } = await run('git', args, { cwd, env: { ...process.env, ...GIT_ENV }, encoding: 'utf8' });
  return stdout.trim();
}

/** The commit `ref` names in the (bare) repository. */
export function commitOf(repoDir: string, ref: string): Promise<string> {
  return git(['--git-dir', repoDir, 'rev-parse', '--verify', `${ref}^{commit}`]);
}

/** The file's content at `ref`, undefined when the path does not exist there; throws when `ref` names nothing. */
export async function readFileAt(repoDir: string, ref: string, path: string): Promise<string | undefined> {
  if (!(await git(['--git-dir', repoDir, 'ls-tree', ref, '--', path]))) return undefined;
  const { stdout } = await run('git', ['--git-dir', repoDir, 'cat-file', 'blob', `${ref}:${path}`], { encoding: 'utf8' });
  return stdout;
}

export interface ChartsWriter {
  /** Commits the files (path → content) on top of the remote branch's tip, whoever pushed it, and pushes; returns the new commit. */
  commitFiles(files: Record<string, string>, message: string): Promise<string>;
}

/** A clone of `bareDir` in `workDir` (created) that writes to its `branch`, as a person or another worker would. */
export async function chartsWriter(bareDir: string, workDir: string, branch = 'main'): Promise<ChartsWriter> {
  await git(['init', '--quiet', `--initial-branch=${branch}`, workDir]);
  await git(['remote', 'add', 'origin', bareDir], workDir);
  return {
    async commitFiles(files, message) {
      // Someone else (the pipeline) may have pushed since; build on their work.
      const remoteHasBranch = (await git(['ls-remote', '--heads', 'origin', branch], workDir)) !== '';
      if (remoteHasBranch) {
        await git(['fetch', '--quiet', 'origin', branch], workDir);
        await git(['reset', '--quiet', '--hard', `origin/${branch}`], workDir);
      }
      for (const [path, content] of Object.entries(files)) {
        if (path.startsWith('/') || path.split('/').includes('..')) throw new Error(`path ${path} must stay inside the repo`);
        const target = join(workDir, path);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, content);
      }
      await git(['add', '--all'], workDir);
      await git(['-c', 'commit.gpgsign=false', 'commit', '--quiet', '--allow-empty', '-m', message], workDir);
      await git(['push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`], workDir);
      return git(['rev-parse', 'HEAD'], workDir);
    },
  };
}

export function imageTagPath(chartsPath: string, app: string, environment: string): string {
  return chartsPath.replace(/\{app\}/g, app).replace(/\{environment\}/g, environment);
}

export async function createLocalChartsRepo(options: LocalChartsRepoOptions = {}): Promise<LocalChartsRepo> {
  const branch = options.branch ?? 'main';
  const chartsPath = options.chartsPath ?? 'charts/app-config/image-tags/{environment}/{app}';
  const root = options.parentDir ?? (await mkdtemp(join(tmpdir(), 'charts-repo-')));
  const ownsRoot = options.parentDir === undefined;
  const bareDir = join(root, 'charts.git');
  const workDir = join(root, 'charts-work');

  await git(['init', '--quiet', '--bare', `--initial-branch=${branch}`, bareDir]);
  const { commitFiles } = await chartsWriter(bareDir, workDir, branch);

  const repo: LocalChartsRepo = {
    bareDir,
    workDir,
    branch,
    commitFiles,
    writeImageTag: (app, environment, tag, extra = {}) =>
      commitFiles({ [imageTagPath(chartsPath, app, environment)]: stringifyYaml({ image_tag: tag, ...extra }) }, `Deploy ${app} ${tag} to ${environment}`),
    tip: () => commitOf(bareDir, `refs/heads/${branch}`),
    readFile: (path) => readFileAt(bareDir, `refs/heads/${branch}`, path).catch(() => undefined),
    async remove() {
      await rm(ownsRoot ? root : bareDir, { recursive: true, force: true });
      if (!ownsRoot) await rm(workDir, { recursive: true, force: true });
    },
  };

  if (options.files && Object.keys(options.files).length > 0) await commitFiles(options.files, 'Initial charts');
  return repo;
}
