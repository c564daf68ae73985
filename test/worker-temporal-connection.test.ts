/**
 * The worker's Temporal token from DEPLOY_TEMPORAL_TOKEN_FILE: what stops the start. That a renewed file keeps a
 * worker running past its first token's expiry is shown on the real server (test/production-shape-principal.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '@temporalio/common';
import { readTemporalToken, SettingsError, temporalTokenFile } from '../common/settings';
import { connectWorker } from '../worker/temporal-connection';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'temporal-token-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, content: string) => {
  const at = path.join(dir, name);
  writeFileSync(at, content);
  return at;
};
const silent = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as Logger;

describe('DEPLOY_TEMPORAL_TOKEN_FILE', () => {
  it('is read as one token, its line break dropped; unset or empty, there is none', () => {
    expect(readTemporalToken(file('token', 'eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl\n'))).toBe('eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl');
    expect(temporalTokenFile({ DEPLOY_TEMPORAL_TOKEN_FILE: ' /run/secrets/temporal ' })).toBe('/run/secrets/temporal');
    expect(temporalTokenFile({ DEPLOY_TEMPORAL_TOKEN_FILE: '' })).toBeUndefined();
    expect(temporalTokenFile({})).toBeUndefined();
  });

  it('stops the start, naming the file, when it is missing, empty or holds more than a token', () => {
    const missing = path.join(dir, 'missing');
    expect(() => readTemporalToken(missing)).toThrow(new SettingsError(`DEPLOY_TEMPORAL_TOKEN_FILE: cannot read ${missing} (ENOENT)`));
    const empty = file('empty', ' \n');
    expect(() => readTemporalToken(empty)).toThrow(new SettingsError(`DEPLOY_TEMPORAL_TOKEN_FILE: ${empty} is empty`));
    const two = file('two', 'one\ntwo\n');
    expect(() => readTemporalToken(two)).toThrow(new SettingsError(`DEPLOY_TEMPORAL_TOKEN_FILE: ${two} holds more than a token (it has spaces or several lines)`));
  });

  it('is refused with TEMPORAL_API_KEY too, before any connection is tried', async () => {
    const env = { TEMPORAL_ADDRESS: '127.0.0.1:1', TEMPORAL_API_KEY: 'key', DEPLOY_TEMPORAL_TOKEN_FILE: file('token2', 'jwt') };
    await expect(connectWorker(silent, env)).rejects.toThrow(
      new SettingsError("DEPLOY_TEMPORAL_TOKEN_FILE is set, and so is an API key (TEMPORAL_API_KEY, or the profile's api_key): give the worker its token one way"),
    );
    await expect(connectWorker(silent, { TEMPORAL_ADDRESS: '127.0.0.1:1', DEPLOY_TEMPORAL_TOKEN_FILE: path.join(dir, 'nope') })).rejects.toBeInstanceOf(SettingsError);
  });
});
