/** Helpers for the deploy-safety tests: commit order, image-tag history in the charts repo, deploy windows, CLI output. */
import { parse as parseYaml } from 'yaml';
import { simpleGit } from 'simple-git';
import type { DeployWindow } from '../../common/catalogue';
import type { Stack } from '../../sandbox/stack';
import type { ArgoCdSimulator, SyncRecord } from '../../simulators/argocd';
import { waitFor } from './env';
import type { PipelineHarness } from './pipeline';

export function imageTagFile(app: string, environment: string): string {
  return `charts/app-config/image-tags/${environment}/${app}`;
}

/** The app's main branch in the GitHub simulator, oldest commit first (first parents from the tip). */
export function mainLine(stack: Stack, app: string): string[] {
  const repo = stack.repoOf(app);
  const line: string[] = [];
  for (let sha = stack.github.branchTip(repo, 'main'); sha; sha = stack.github.getCommitRecord(repo, sha)?.parents[0]) line.push(sha);
  return line.reverse();
}

export interface TagChange {
  commit: string;
  subject: string;
  /** image_tag after the commit. */
  tag: string | undefined;
  /** automatic_deploys_enabled after the commit. */
  automatic: unknown;
}

/** Every commit of the bare charts repo that touched the file, oldest first, with the tag it left there. */
export async function tagHistory(bareDir: string, file: string): Promise<TagChange[]> {
  const git = simpleGit({ baseDir: bareDir });
  const log = await git.raw(['log', '--reverse', '--format=%H%x09%s', 'main', '--', file]);
  const changes: TagChange[] = [];
  for (const line of log.split('\n').filter(Boolean)) {
    const [commit = '', subject = ''] = line.split('\t');
    const document = parseYaml(await git.raw(['show', `${commit}:${file}`])) as { image_tag?: unknown; automatic_deploys_enabled?: unknown } | null;
    changes.push({ commit, subject, tag: document?.image_tag === undefined ? undefined : String(document.image_tag), automatic: document?.automatic_deploys_enabled });
  }
  return changes;
}

/** Argo CD's sync operations for one application, in the order they started. */
export function syncsOf(argo: ArgoCdSimulator, application: string): SyncRecord[] {
  return argo.syncHistory.filter((r) => r.name === application);
}

/** `deploy hold list --json`, once visibility shows the lane (its search attributes are eventually consistent). */
export async function holdsOf(h: PipelineHarness, app: string, wanted: (holds: Array<Record<string, string>>) => boolean): Promise<Array<Record<string, string>>> {
  return waitFor(
    async () => {
      const listed = await h.cli(['hold', 'list', '--app', app, '--json']);
      if (listed.code !== 0) throw new Error(listed.err.join('\n'));
      const holds = JSON.parse(listed.out.join('\n')) as Array<Record<string, string>>;
      return wanted(holds) ? holds : undefined;
    },
    { timeoutMs: 20_000, description: `the holds of ${app} in \`deploy hold list\`` },
  );
}

const DAY_MS = 86_400_000;

function clock(instant: number): string {
  return new Date(instant).toISOString().slice(11, 19);
}

/**
 * A daily UTC deploy window (HH:MM:SS) that opens at the first whole second at least `leadMs` after `now`,
 * and the instant it opens. A window opens and closes on the same day, so when that second is the day's
 * last one, it opens a second later, at midnight.
 */
export function windowOpeningIn(now: number, leadMs: number): { window: DeployWindow; opensAt: Date } {
  let opens = Math.ceil((now + leadMs) / 1000) * 1000;
  const lastSecondOfDay = Math.floor(opens / DAY_MS) * DAY_MS + DAY_MS - 1000;
  if (opens >= lastSecondOfDay) opens = lastSecondOfDay + 1000;
  const closes = Math.min(opens + 10 * 60_000, Math.floor(opens / DAY_MS) * DAY_MS + DAY_MS - 1000);
  return {
    window: { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: clock(opens), to: clock(closes), timezone: 'UTC' },
    opensAt: new Date(opens),
  };
}

/**
 * A daily deploy window that is open now and closes `leadMs` from `now`, and the instant it closes. It is written
 * in a fixed-offset zone where it is about noon, so that it never runs across midnight whenever the test runs.
 */
export function windowClosingIn(now: number, leadMs: number): { window: DeployWindow; closesAt: Date } {
  const utcHour = new Date(now).getUTCHours();
  let offsetHours = (12 - utcHour + 24) % 24;
  if (offsetHours > 14) offsetHours -= 24;
  // POSIX-style names: Etc/GMT-3 is three hours ahead of UTC.
  const timezone = offsetHours >= 0 ? `Etc/GMT-${offsetHours}` : `Etc/GMT+${-offsetHours}`;
  const closes = Math.ceil((now + leadMs) / 1000) * 1000;
  const local = (instant: number) => clock(instant + offsetHours * 3_600_000);
  return {
    window: { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: local(now - 10 * 60_000), to: local(closes), timezone },
    closesAt: new Date(closes),
  };
}
