/**
 * What tests ask of the Helm-charts repo (a real bare git repo, see simulators/charts-repo.ts): its commits and
 * files, and other writers that push to it.
 */
import { mkdir, mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { chartsWriter, commitOf, createLocalChartsRepo, git, readFileAt } from '../../simulators/charts-repo';

export { readFileAt };

export interface CommitSummary {
  sha: string;
  subject: string;
}

/** Makes `<dir>/charts.git`, a bare repo whose branch main has one commit holding `files`; returns its path. */
export async function createChartsRepo(dir: string, files: Record<string, string>): Promise<string> {
  const repo = await createLocalChartsRepo({ parentDir: dir });
  await repo.commitFiles(files, 'Initial charts');
  return repo.bareDir;
}

/** Commits on `ref`, newest first. */
export async function listCommits(bare: string, ref = 'main'): Promise<CommitSummary[]> {
  const out = await git(['--git-dir', bare, 'log', '--format=%H%x09%s', ref]);
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
  const out = await git(['--git-dir', bare, 'ls-tree', '-r', '--name-only', ref]);
  return out.split('\n').filter(Boolean);
}

/** The SHA `ref` names in the bare repo. */
export function headOf(bare: string, ref = 'main'): Promise<string> {
  return commitOf(bare, ref);
}

export function parentOf(bare: string, sha: string): Promise<string> {
  return commitOf(bare, `${sha}^`);
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
  const writer = await chartsWriter(bare, clone);
  let pushes = 0;
  return {
    get pushes() {
      return pushes;
    },
    async push(files, subject) {
      const n = pushes + 1;
      const sha = await writer.commitFiles(files ?? { [`notes/competing-${path.basename(clone)}-${n}.md`]: `competing change ${n}\n` }, subject ?? `Competing change ${n}`);
      pushes = n;
      return sha;
    },
  };
}
