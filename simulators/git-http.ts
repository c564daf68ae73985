import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sameSecret } from './http';

/**
 * Serves bare repositories over git's smart HTTP protocol, as GitHub does, with HTTP Basic authentication:
 * git's own `http-backend` answers every request, so the client side is real git end to end. A request without
 * the right credentials gets 401 and a `WWW-Authenticate` challenge, which is when a git client asks its
 * credential helper.
 */
export interface GitHttpServerOptions {
  /** The folder holding the bare repositories: `<root>/charts.git` is served at `<url>/charts.git`. */
  root: string;
  username: string;
  password: string;
}

export interface GitHttpServer {
  /** Without credentials: `http://127.0.0.1:<port>`. */
  url: string;
  /** Every request as received: method, path, and whether it carried the right credentials. */
  requests: { method: string; path: string; authorised: boolean }[];
  close(): Promise<void>;
}

function authorised(request: IncomingMessage, options: GitHttpServerOptions): boolean {
  const header = request.headers.authorization ?? '';
  const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
  if (!match) return false;
  return sameSecret(Buffer.from(match[1]!, 'base64').toString('utf8'), `${options.username}:${options.password}`);
}

/** Runs `git http-backend` as a CGI program for one request and relays its answer. */
function relayToBackend(request: IncomingMessage, response: ServerResponse, root: string, user: string): void {
  const url = new URL(request.url ?? '/', 'http://git.invalid');
  const backend = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH ?? '',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      REMOTE_USER: user,
      REMOTE_ADDR: request.socket.remoteAddress ?? '127.0.0.1',
      REQUEST_METHOD: request.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ''),
      CONTENT_TYPE: request.headers['content-type'] ?? '',
      ...(request.headers['content-length'] ? { CONTENT_LENGTH: request.headers['content-length'] } : {}),
      ...(request.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(request.headers['content-encoding']) } : {}),
      ...(request.headers['git-protocol'] ? { GIT_PROTOCOL: String(request.headers['git-protocol']) } : {}),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  request.pipe(backend.stdin);
  const chunks: Buffer[] = [];
  let stderr = '';
  backend.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  backend.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  backend.on('close', (code) => {
    const output = Buffer.concat(chunks);
    const split = output.indexOf('\r\n\r\n') >= 0 ? output.indexOf('\r\n\r\n') : output.indexOf('\n\n');
    if (code !== 0 || split < 0) {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(`git http-backend failed: ${stderr.trim() || `exit ${code}`}`);
      return;
    }
    const separator = output[split] === 0x0d ? 4 : 2;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of output.subarray(0, split).toString('utf8').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]) || 500;
      else headers[name] = value;
    }
    response.writeHead(status, headers).end(output.subarray(split + separator));
  });
}

export async function startGitHttpServer(options: GitHttpServerOptions): Promise<GitHttpServer> {
  const requests: GitHttpServer['requests'] = [];
  const server = createServer((request, response) => {
    const ok = authorised(request, options);
    requests.push({ method: request.method ?? 'GET', path: request.url ?? '/', authorised: ok });
    if (!ok) {
      request.resume();
      response.writeHead(401, { 'www-authenticate': 'Basic realm="charts"', 'content-type': 'text/plain' }).end('Authentication required');
      return;
    }
    relayToBackend(request, response, options.root, options.username);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
