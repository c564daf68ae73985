import { shortSha } from '../common/names';
import type { EnvironmentStatus, PipelineStatus } from '../common/types';

/** The one-line summary Web UI shows for a pipeline: `whitehall 1a2b3c4 → integration → staging → production`. */
export function staticSummary(app: string, sha: string, environments: string[]): string {
  return [`${app} ${shortSha(sha)}`, ...environments].join(' → ');
}

/** Full-SHA tags do not fit Web UI's details panel; seven characters name a commit well enough there. */
function tagCell(tag: string | undefined): string {
  return tag && /^[0-9a-f]{40}$/.test(tag) ? shortSha(tag) : cell(tag);
}

function cell(text: string | undefined): string {
  return (text ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function how(channel: string | undefined): string {
  return channel && channel !== 'claimed' ? ` (${channel})` : '';
}

function note(env: EnvironmentStatus): string {
  if (env.approval) return `approved by ${env.approval.by}${how(env.approval.channel)}`;
  if (env.rejection) return `rejected by ${env.rejection.by}${how(env.rejection.channel)}: ${env.rejection.comment ?? ''}`;
  const brings = env.state === 'AWAITING_APPROVAL' && env.changes ? `brings ${env.changes.total} commit${env.changes.total === 1 ? '' : 's'}` : '';
  const waiting = [env.waitingFor ?? env.error ?? '', brings].filter(Boolean).join('; ');
  // A refused signal cannot answer its sender: Web UI's panel says why it changed nothing.
  const refused = env.state === 'AWAITING_APPROVAL' && env.refusedDecision ? `; last decision refused: ${env.refusedDecision.reason}` : '';
  return `${waiting}${refused}`.replace(/^; /, '');
}

/** Web UI's "current details": where the pipeline stands, as a short Markdown table. */
export function renderDetails(status: PipelineStatus): string {
  // Web UI shows this in a short panel: the pipeline's own row is the table's head, so every environment fits.
  const head = `| ${status.trigger} pipeline | ${status.status} | ${tagCell(status.tag ?? status.ref)} | charts commit | ${cell(status.failure) || 'notes'} |`;
  const rows = status.environments.map(
    (env) =>
      `| ${cell(env.environment)} | ${env.state} | ${tagCell(env.tag)} | ${env.chartsCommit ? shortSha(env.chartsCommit) : ''} | ${cell(note(env))} |`,
  );
  return [head, '|---|---|---|---|---|', ...rows].join('\n');
}
