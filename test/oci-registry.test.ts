/**
 * The OCI registry adapter against the CNCF Distribution registry (built from source with `go install`), with
 * Docker's token authentication as GitHub's container registry and Docker Hub use it: the registry answers 401
 * with a Bearer challenge, a token service (simulated, RSA key made at start) grants scopes per user, and the
 * registry verifies the token against that service's keys.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createOciImageRegistry, type OciImageRegistry } from '../adapters/oci-registry';
import { PermanentHttpError } from '../common/errors';
import { pushOciImage } from '../simulators/oci-images';
import { RegistryTokenSimulator } from '../simulators/registry-token';
import { startDistributionRegistry, type RunningRegistry } from '../harness/distribution-registry';

const CI_PASSWORD = `ci-${randomBytes(12).toString('hex')}`;
const DEPLOYER_PASSWORD = `deployer-${randomBytes(12).toString('hex')}`;
const READER_PASSWORD = `reader-${randomBytes(12).toString('hex')}`;

let dir: string;
let tokens: RegistryTokenSimulator;
let registry: RunningRegistry;

/** A bearer token for the CI user, as `docker login` would get, to push images with. */
async function ciAuthorization(repository: string): Promise<string> {
  const url = new URL(tokens.realm);
  url.searchParams.set('service', 'test-registry');
  url.searchParams.set('scope', `repository:${repository}:pull,push`);
  const answer = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(`ci:${CI_PASSWORD}`).toString('base64')}` } });
  return `Bearer ${((await answer.json()) as { token: string }).token}`;
}

function adapter(username?: string, password?: string, onRequest?: (method: string, url: string) => void): OciImageRegistry {
  return createOciImageRegistry({
    url: registry.url,
    username,
    password,
    fetch: (input, init) => {
      onRequest?.(init?.method ?? 'GET', String(input));
      return fetch(input, init);
    },
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'oci-registry-'));
  tokens = new RegistryTokenSimulator({
    service: 'test-registry',
    issuer: 'test-token-service',
    jwksPath: path.join(dir, 'jwks.json'),
    users: {
      ci: { password: CI_PASSWORD, actions: ['pull', 'push'] },
      deployer: { password: DEPLOYER_PASSWORD, actions: ['pull', 'push'] },
      reader: { password: READER_PASSWORD, actions: ['pull'] },
    },
  });
  await tokens.start();
  registry = await startDistributionRegistry({
    dataDir: path.join(dir, 'registry'),
    auth: { token: { realm: tokens.realm, service: 'test-registry', issuer: 'test-token-service', jwks: path.join(dir, 'jwks.json') } },
  });
});

afterAll(async () => {
  await registry?.stop();
  await tokens?.close();
  if (dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
});

describe('OCI registry adapter against the Distribution registry with token auth', () => {
  it('finds an image by tag and tells its digest; a missing tag is not an error', async () => {
    const repository = `alphagov/whitehall-${randomBytes(3).toString('hex')}`;
    const pushed = await pushOciImage(registry.url, repository, 'v3231', { authorization: await ciAuthorization(repository) });
    const images = adapter('deployer', DEPLOYER_PASSWORD);
    await expect(images.hasImage(repository, 'v3231')).resolves.toBe(true);
    await expect(images.digestOf(repository, 'v3231')).resolves.toBe(pushed.digest);
    await expect(images.hasImage(repository, 'v3232')).resolves.toBe(false);
    await expect(images.hasImage(`alphagov/never-pushed-${randomBytes(3).toString('hex')}`, 'v1')).resolves.toBe(false);
  });

  it('tags the image deployed-to-<env> with the same bytes, once: a retry puts nothing', async () => {
    const repository = `alphagov/router-${randomBytes(3).toString('hex')}`;
    const pushed = await pushOciImage(registry.url, repository, 'v7', { authorization: await ciAuthorization(repository) });
    const puts: string[] = [];
    const images = adapter('deployer', DEPLOYER_PASSWORD, (method, url) => method === 'PUT' && puts.push(url));
    await images.addTag(repository, 'v7', 'deployed-to-staging');
    await expect(images.digestOf(repository, 'deployed-to-staging')).resolves.toBe(pushed.digest);
    await images.addTag(repository, 'v7', 'deployed-to-staging');
    expect(puts).toHaveLength(1);

    // A newer release takes the environment tag over; the old image keeps its own tag.
    const newer = await pushOciImage(registry.url, repository, 'v8', { authorization: await ciAuthorization(repository) });
    await images.addTag(repository, 'v8', 'deployed-to-staging');
    await expect(images.digestOf(repository, 'deployed-to-staging')).resolves.toBe(newer.digest);
    await expect(images.digestOf(repository, 'v7')).resolves.toBe(pushed.digest);
    await expect(images.addTag(repository, 'v9', 'deployed-to-staging')).rejects.toThrow(`OCI repository "${repository}" has no image tagged "v9"`);

    // By digest: the image checked, even after its tag was pushed over.
    await pushOciImage(registry.url, repository, 'v7', { seed: 'another build', authorization: await ciAuthorization(repository) });
    await images.addTag(repository, pushed.digest, 'deployed-to-staging');
    await expect(images.digestOf(repository, 'deployed-to-staging')).resolves.toBe(pushed.digest);
  });

  it('refuses clearly, without the password: no credentials, wrong ones, and a user who may only pull', async () => {
    const repository = `alphagov/search-${randomBytes(3).toString('hex')}`;
    await pushOciImage(registry.url, repository, 'v1', { authorization: await ciAuthorization(repository) });

    const anonymous = await adapter().hasImage(repository, 'v1').catch((e: unknown) => e);
    expect(anonymous).toBeInstanceOf(PermanentHttpError);
    expect((anonymous as Error).message).toBe(`the OCI registry ${registry.url}/ refused anonymous access for repository:${repository}:pull`);

    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const refused = await adapter('deployer', wrong).hasImage(repository, 'v1').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PermanentHttpError);
    expect((refused as Error).message).toMatch(/returned 401/);
    expect((refused as Error).message).not.toContain(wrong);

    const reader = adapter('reader', READER_PASSWORD);
    await expect(reader.hasImage(repository, 'v1')).resolves.toBe(true);
    const pushRefused = await reader.addTag(repository, 'v1', 'deployed-to-production').catch((e: unknown) => e);
    expect(pushRefused).toBeInstanceOf(PermanentHttpError);
    expect((pushRefused as Error).message).toBe(`the OCI registry ${registry.url}/ refused our credentials for repository:${repository}:pull,push`);
    expect((pushRefused as Error).message).not.toContain(READER_PASSWORD);
    await expect(reader.digestOf(repository, 'deployed-to-production')).resolves.toBeUndefined();
  });
});
