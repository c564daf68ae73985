import { z } from 'zod';
import { InvalidNameError } from '../common/names';
import type { ArgoApplicationStatus, ArgoCd } from '../common/ports';
import { joinUrl, sendRequest } from './http-client';

export interface ArgoCdClientOptions {
  url: string;
  token: string;
  /** Per request; a refresh makes Argo CD look at git before it answers. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const APPLICATION_NAME = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/;

const optionalString = z.string().optional().catch(undefined);

/** Only what the pipeline reads; Argo CD's Application carries much more. Multi-source apps report `revisions`. */
const applicationSchema = z.object({
  metadata: z.object({ name: z.string() }),
  status: z
    .object({
      sync: z.object({ status: optionalString, revision: optionalString, revisions: z.array(z.string()).optional().catch(undefined) }).optional().catch(undefined),
      health: z.object({ status: optionalString, message: optionalString }).optional().catch(undefined),
      operationState: z
        .object({
          phase: optionalString,
          message: optionalString,
          operation: z.object({ sync: z.object({ revision: optionalString }).optional().catch(undefined) }).optional().catch(undefined),
          syncResult: z.object({ revision: optionalString, revisions: z.array(z.string()).optional().catch(undefined) }).optional().catch(undefined),
        })
        .optional()
        .catch(undefined),
      summary: z.object({ images: z.array(z.string()).optional().catch(undefined) }).optional().catch(undefined),
    })
    .optional(),
});

export function createArgoCdClient(options: ArgoCdClientOptions): ArgoCd {
  const { token } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;

  return {
    async getApplication(name, refresh) {
      if (!APPLICATION_NAME.test(name)) throw new InvalidNameError(`invalid Argo CD application name ${JSON.stringify(name)}`);
      const url = joinUrl(options.url, `api/v1/applications/${encodeURIComponent(name)}`);
      if (refresh) url.searchParams.set('refresh', refresh);
      const { body } = await sendRequest({
        service: 'Argo CD',
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${token}` },
        timeoutMs,
        secrets: [token],
        fetch: options.fetch,
      });
      const parsed = applicationSchema.safeParse(body);
      if (!parsed.success) {
        throw new Error(`Argo CD answered GET application ${name} with something that is not an Application: ${z.prettifyError(parsed.error)}`);
      }
      return toStatus(parsed.data);
    },
  };
}

function toStatus(application: z.infer<typeof applicationSchema>): ArgoApplicationStatus {
  const status = application.status ?? {};
  const operation = status.operationState;
  return withoutUndefined({
    name: application.metadata.name,
    syncStatus: status.sync?.status ?? 'Unknown',
    syncRevision: status.sync?.revision ?? status.sync?.revisions?.[0],
    healthStatus: status.health?.status ?? 'Unknown',
    healthMessage: status.health?.message,
    operationPhase: operation?.phase,
    operationMessage: operation?.message,
    operationRevision: operation?.syncResult?.revision ?? operation?.syncResult?.revisions?.[0] ?? operation?.operation?.sync?.revision,
    images: status.summary?.images,
  });
}

/** Keeps activity results free of `undefined` keys, which Temporal's payloads would drop anyway. */
function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}
