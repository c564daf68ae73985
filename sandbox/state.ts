import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SimCommit } from '../simulators/github';

/**
 * What the sandbox must remember between runs beyond Temporal's SQLite file, the charts repo and the
 * release app's records: the simulated GitHub repos' commits (their SHAs are in running pipelines) and
 * which sample pipelines it has started. ECR is rebuilt from these on every start.
 */

export interface SandboxState {
  version: 1;
  /** Names the image repositories and the worker's charts clone. */
  id: string;
  apps: Record<string, { history: SimCommit[]; sample?: { sha: string; started: boolean } }>;
}

export const STATE_FILE = 'sandbox.json';

export async function loadState(dataDir: string): Promise<SandboxState | undefined> {
  const file = join(dataDir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const state = JSON.parse(text) as SandboxState;
  if (state.version !== 1 || typeof state.id !== 'string' || typeof state.apps !== 'object') {
    throw new Error(`${file} was written by another version of the sandbox; delete ${dataDir} to start afresh`);
  }
  return state;
}

/** Written to a temporary file first, so that a crash never leaves half a state behind. */
export async function saveState(dataDir: string, state: SandboxState): Promise<void> {
  const file = join(dataDir, STATE_FILE);
  await writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

export function newState(): SandboxState {
  return { version: 1, id: `sandbox-${randomBytes(3).toString('hex')}`, apps: {} };
}

/** A commit as GitHub would hold it; the SHA is random, as merges are. */
export function newCommit(parents: string[], message: string, authorLogin: string): SimCommit {
  return {
    sha: randomBytes(20).toString('hex'),
    parents,
    authorLogin,
    message,
    date: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
}
