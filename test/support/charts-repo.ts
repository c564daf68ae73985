/** Real git repositories standing in for the Helm-charts repo: a bare "remote" and clones that write to it. */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';

export interface CommitSummary {
  sha: string;
  subject: string;
}

const TEST_AUTHOR = ['user.name=Charts Test', 'user.email=charts-test@example.com', 'commit.gpgsign=false'];

function gitIn(dir: string): SimpleGit {
  return simpleGit({ baseDir: dir, config: TEST_AUTHOR });
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [file, content] of Object.entries(files)) {
    const target = path.join(dir, file);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content);
  }
}

/** Makes `<dir>/charts.git`, a bare repo whose branch main has one commit holding `files`; returns its path. */
export async function createChartsRepo(dir: string, files: Record<string, string>): Promise<string> {
  const bare = path.join(dir, 'charts.git');
  const seed = path.join(dir, 'charts-seed');
  await mkdir(bare, { recursive: true });
  await mkdir(seed, { recursive: true });
  await gitIn(bare).raw(['init', '--quiet', '--bare', '--initial-branch=main']);
  const git = gitIn(seed);
  await git.raw(['init', '--quiet', '--initial-branch=main']);
  await writeFiles(seed, files);
  await git.raw(['add', '--all']);
  await git.raw(['commit', '--quiet', '--allow-empty', '-m', 'Initial charts']);
  await git.raw(['push', '--quiet', bare, 'main:refs/heads/main']);
  return bare;
}

/** The file's content at `ref`, or undefined when the path does not exist there. */
export async function readFileAt(bare: string, ref: string, file: string): Promise<string | undefined> {
  const git = gitIn(bare);
  const listing = await git.raw(['ls-tree', ref, '--', file]);
  if (!listing.trim()) return undefined;
  return git.raw(['show', `${ref}:${file}`]);
}

/** Commits on `ref`, newest first. */
export async function listCommits(bare: string, ref = 'main'): Promise<CommitSummary[]> {
  const out = await gitIn(bare).raw(['log', '--format=%H%x09%s', ref]);
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [sha = '', subject = ''] = line.split('\t');
      return { sha, subject };
    });
}

/** Every file path at `ref`. */
export async function listFiles(bare: string, ref = 'main'): Promise<string[]> {
  const out = await gitIn(bare).raw(['ls-tree', '-r', '--name-only', ref]);
  return out.split('\n').filter(Boolean);
}

/** The SHA `ref` names in the bare repo. */
export async function headOf(bare: string, ref = 'main'): Promise<string> {
  return (await gitIn(bare).raw(['rev-parse', '--verify', `${ref}^{commit}`])).trim();
}

export async function parentOf(bare: string, sha: string): Promise<string> {
  return (await gitIn(bare).raw(['rev-parse', '--verify', `${sha}^`])).trim();
}

export interface CompetingWriter {
  /**
   * Commits `files` on top of the remote's main and pushes; by default an unrelated file that no other
   * push touches. Returns the new commit.
   */
  push(files?: Record<string, string>, subject?: string): Promise<string>;
  /** How many commits this writer has pushed. */
  readonly pushes: number;
}

/** Another writer of the charts repo (a person, another worker), with its own clone under `workspace`. */
export async function competingWriter(bare: string, workspace: string): Promise<CompetingWriter> {
  await mkdir(workspace, { recursive: true });
  const clone = await mkdtemp(path.join(workspace, 'competing-writer-'));
  const git = gitIn(clone);
  await git.raw(['init', '--quiet', '--initial-branch=main']);
  let pushes = 0;
  return {
    get pushes() {
      return pushes;
    },
    async push(files, subject) {
      const n = pushes + 1;
      await git.raw(['fetch', '--quiet', bare, '+refs/heads/main:refs/remotes/origin/main']);
      await git.raw(['checkout', '--quiet', '--force', '-B', 'main', 'refs/remotes/origin/main']);
      await writeFiles(clone, files ?? { [`notes/competing-${path.basename(clone)}-${n}.md`]: `competing change ${n}\n` });
      await git.raw(['add', '--all']);
      await git.raw(['commit', '--quiet', '-m', subject ?? `Competing change ${n}`]);
      await git.raw(['push', '--quiet', bare, 'HEAD:refs/heads/main']);
      pushes = n;
      return (await git.raw(['rev-parse', 'HEAD'])).trim();
    },
  };
}
