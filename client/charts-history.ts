/**
 * What the charts repository's log says ran on an environment, beside the pipelines' records: GOV.UK's image-tag
 * files are also changed by people and other tools, and only the log shows those changes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGitChartsRepository } from '../adapters/charts-git';
import type { ImageTagCommit } from '../common/ports';
import { UnreachableError, type EnvironmentRun } from './pipelines';

export interface ChartsLogSource {
  remoteUrl: string;
  branch?: string;
  chartsPath?: string;
}

/** The newest `limit` commits that changed the app's image-tag file, read through a clone made for this and removed after. */
export async function readChartsLog(source: ChartsLogSource, app: string, environment: string, limit: number): Promise<ImageTagCommit[]> {
  const workdir = await mkdtemp(join(tmpdir(), 'deploy-history-'));
  try {
    const charts = createGitChartsRepository({ remoteUrl: source.remoteUrl, branch: source.branch, workdir, chartsPath: source.chartsPath });
    return await charts.imageTagHistory!(app, environment, limit);
  } catch (err) {
    throw new UnreachableError(`cannot read the charts repository's log: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await rm(workdir, { recursive: true, force: true });
  }
}

/**
 * One list, newest first: each pipeline's deploy with the charts commit it made, and every other commit to the file
 * (a person's edit, a freeze, a rollback) as a row of its own.
 */
export function withChartsLog(runs: EnvironmentRun[], commits: ImageTagCommit[], limit: number): EnvironmentRun[] {
  const byPipeline = new Set(runs.flatMap((run) => (run.chartsCommit ? [run.chartsCommit] : [])));
  const others = commits
    .filter((commit) => !byPipeline.has(commit.commit))
    .map((commit): EnvironmentRun => ({ at: new Date(commit.at).toISOString(), tag: commit.tag, state: 'CHARTS COMMIT', trigger: 'charts', pipeline: commit.subject, chartsCommit: commit.commit, author: commit.author }));
  return [...runs, ...others].sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, limit);
}
