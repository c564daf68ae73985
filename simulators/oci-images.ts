import { createHash } from 'node:crypto';

/**
 * Pushes small, real images to an OCI registry through the distribution API, as `docker push` does: the config
 * and one layer as blobs (POST an upload, PUT it with its digest), then the image manifest under a tag. A
 * registry checks that a manifest's blobs exist, so nothing here is a stand-in.
 */
export interface PushedImage {
  digest: string;
  manifest: string;
}

function digestOf(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function ok(response: Response, what: string): Promise<Response> {
  if (!response.ok) throw new Error(`${what} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
  return response;
}

async function pushBlob(registryUrl: string, repository: string, data: Buffer, authorization?: string): Promise<string> {
  const digest = digestOf(data);
  const headers: Record<string, string> = authorization ? { authorization } : {};
  const started = await ok(await fetch(`${registryUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers }), `starting a blob upload to ${repository}`);
  const location = new URL(started.headers.get('location')!, registryUrl);
  location.searchParams.set('digest', digest);
  await ok(
    await fetch(location, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: data }),
    `uploading blob ${digest} to ${repository}`,
  );
  return digest;
}

/** An image whose content depends on `seed`: another seed is another digest. */
export async function pushOciImage(registryUrl: string, repository: string, tag: string, options: { seed?: string; authorization?: string } = {}): Promise<PushedImage> {
  const seed = options.seed ?? tag;
  const layer = Buffer.from(`layer of ${repository} ${seed}\n`);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { seed } }, rootfs: { type: 'layers', diff_ids: [digestOf(layer)] } }));
  const configDigest = await pushBlob(registryUrl, repository, config, options.authorization);
  const layerDigest = await pushBlob(registryUrl, repository, layer, options.authorization);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
  });
  await ok(
    await fetch(`${registryUrl}/v2/${repository}/manifests/${tag}`, {
      method: 'PUT',
      headers: { ...(options.authorization ? { authorization: options.authorization } : {}), 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    }),
    `putting manifest ${repository}:${tag}`,
  );
  return { digest: digestOf(manifest), manifest };
}
