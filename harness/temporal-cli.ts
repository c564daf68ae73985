/**
 * The `temporal` CLI that runs the dev server. scripts/ensure-temporal-cli.mjs holds the lookup (DESIGN.md §6:
 * TEMPORAL_CLI_PATH, `temporal` on PATH, the copy the project built under .cache/bin, then `go install` of the
 * pinned version), so that CI and `npm run temporal-cli` run the very same code before any TypeScript is built.
 */
import { join } from 'node:path';
import { projectRoot, runPathScript } from './project-scripts';

export interface FindTemporalCliOptions {
  /** `show`: the lookup's log (and a Go build's progress) goes to stderr as it runs; `on-failure` (default): only into the error. */
  log?: 'show' | 'on-failure';
  /** Called once should the lookup still run after a few seconds: it is building the CLI with Go. */
  onSlow?: () => void;
}

/** The absolute path of a working `temporal` CLI; rejects with the reason (a build's error) when there is none. */
export function findTemporalCli(options: FindTemporalCliOptions = {}): Promise<string> {
  return runPathScript(process.execPath, [join(projectRoot(), 'scripts', 'ensure-temporal-cli.mjs')], {
    what: 'no temporal CLI',
    log: options.log ?? 'on-failure',
    onSlow: options.onSlow,
  });
}
