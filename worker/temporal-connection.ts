/**
 * The worker's connection to Temporal: the SDK's environment configuration (TEMPORAL_ADDRESS, TEMPORAL_API_KEY, TLS,
 * profiles), or with DEPLOY_TEMPORAL_TOKEN_FILE a token read from a file and read again while the worker runs, so
 * that a short-lived token (a JWT from the server's identity provider) is renewed without a restart.
 */
import type { Logger } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { type Env, readTemporalToken, SettingsError, temporalConnectConfig, temporalTokenFile } from '../common/settings';

/** How often the token file is read again: well within a token's life, which identity providers give in minutes. */
export const TOKEN_FILE_RECHECK_MS = 10_000;

export interface WorkerConnection {
  connection: NativeConnection;
  namespace?: string;
  address: string;
  close(): Promise<void>;
}

export async function connectWorker(logger: Logger, env: Env = process.env): Promise<WorkerConnection> {
  const { connectionOptions, namespace } = temporalConnectConfig(env);
  const address = connectionOptions.address!;
  const file = temporalTokenFile(env);
  if (!file) {
    const connection = await NativeConnection.connect(connectionOptions);
    return { connection, namespace, address, close: () => connection.close() };
  }
  if (connectionOptions.apiKey) {
    throw new SettingsError("DEPLOY_TEMPORAL_TOKEN_FILE is set, and so is an API key (TEMPORAL_API_KEY, or the profile's api_key): give the worker its token one way");
  }
  let token = readTemporalToken(file);
  // As with TEMPORAL_API_KEY: TLS is on unless TEMPORAL_TLS (or the profile) says otherwise.
  const connection = await NativeConnection.connect({ ...connectionOptions, apiKey: token, tls: connectionOptions.tls ?? true });
  const timer = setInterval(() => {
    let next: string;
    try {
      next = readTemporalToken(file);
    } catch (err) {
      logger.warn('could not read the Temporal token file again; the worker keeps the token it has', { error: (err as Error).message });
      return;
    }
    if (next === token) return;
    token = next;
    connection.setApiKey(next).then(
      () => logger.info('the worker now uses the renewed Temporal token', { file }),
      (err: unknown) => logger.warn('could not switch to the renewed Temporal token', { error: (err as Error).message }),
    );
  }, TOKEN_FILE_RECHECK_MS);
  timer.unref();
  return {
    connection,
    namespace,
    address,
    async close() {
      clearInterval(timer);
      await connection.close();
    },
  };
}
