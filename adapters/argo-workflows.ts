import { z } from 'zod';
import { PermanentHttpError } from '../common/errors';
import { InvalidNameError } from '../common/names';
import type { ArgoWorkflows, ArgoWorkflowStatus } from '../common/ports';
import { joinUrl, sendRequest } from './http-client';

export interface ArgoWorkflowsClientOptions {
  url: string;
  /** A token argo-server accepts (a service account's); a value that already starts with `Bearer ` is sent as it is. */
  token: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const KUBERNETES_NAME = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;

const optionalString = z.string().optional().catch(undefined);

/** Only what the pipeline reads of a Workflow. */
const workflowSchema = z.object({
  metadata: z.object({ name: z.string() }),
  status: z
    .object({
      phase: optionalString,
      message: optionalString,
      nodes: z
        .record(z.string(), z.object({ name: optionalString, displayName: optionalString, type: optionalString, phase: optionalString, message: optionalString, finishedAt: optionalString }))
        .optional()
        .catch(undefined),
    })
    .optional()
    .catch(undefined),
});

function checkedName(what: string, name: string): string {
  if (!KUBERNETES_NAME.test(name)) throw new InvalidNameError(`invalid ${what} ${JSON.stringify(name)}`);
  return name;
}

export function createArgoWorkflowsClient(options: ArgoWorkflowsClientOptions): ArgoWorkflows {
  const token = options.token.replace(/^Bearer\s+/i, '');
  const timeoutMs = options.timeoutMs ?? 10_000;

  const call = async (method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<ArgoWorkflowStatus> => {
    const { body: answer } = await sendRequest({
      service: 'Argo Workflows',
      method,
      url: joinUrl(options.url, path),
      headers: { authorization: `Bearer ${token}` },
      body,
      timeoutMs,
      secrets: [token],
      fetch: options.fetch,
    });
    const parsed = workflowSchema.safeParse(answer);
    if (!parsed.success) throw new Error(`Argo Workflows answered ${method} ${path} with something that is not a Workflow: ${z.prettifyError(parsed.error)}`);
    return toStatus(parsed.data);
  };
  const workflowPath = (namespace: string, name: string) =>
    `api/v1/workflows/${encodeURIComponent(checkedName('namespace', namespace))}/${encodeURIComponent(checkedName('workflow name', name))}`;

  return {
    async submitFromTemplate(request) {
      const namespace = checkedName('namespace', request.namespace);
      for (const [key, value] of Object.entries(request.labels)) {
        if (!LABEL_VALUE.test(value) || value.includes(',')) throw new InvalidNameError(`invalid label value ${JSON.stringify(value)} for ${key}`);
      }
      const submitOptions = {
        name: checkedName('workflow name', request.name),
        parameters: Object.entries(request.parameters).map(([key, value]) => `${key}=${value}`),
        ...(Object.keys(request.labels).length > 0 ? { labels: Object.entries(request.labels).map(([key, value]) => `${key}=${value}`).join(',') } : {}),
      };
      try {
        const workflow = await call('POST', `api/v1/workflows/${encodeURIComponent(namespace)}/submit`, {
          namespace,
          resourceKind: 'WorkflowTemplate',
          resourceName: checkedName('WorkflowTemplate name', request.template),
          submitOptions,
        });
        return { existed: false, workflow };
      } catch (err) {
        // Kubernetes refuses a second workflow of the same name: the one an earlier try submitted is there.
        if (err instanceof PermanentHttpError && err.status === 409) return { existed: true, workflow: await call('GET', workflowPath(namespace, request.name)) };
        throw err;
      }
    },
    getWorkflow: async (namespace, name) => call('GET', workflowPath(namespace, name)),
    async stopWorkflow(namespace, name, message) {
      await call('PUT', `${workflowPath(namespace, name)}/stop`, { namespace, name, message });
    },
  };
}

function toStatus(workflow: z.infer<typeof workflowSchema>): ArgoWorkflowStatus {
  const nodes = Object.values(workflow.status?.nodes ?? {});
  const failed = nodes
    .filter((node) => node.phase === 'Failed' || node.phase === 'Error')
    // The pod that failed says why; the steps and DAG nodes above it only repeat "child failed".
    .sort((a, b) => Number(b.type === 'Pod') - Number(a.type === 'Pod') || (a.finishedAt ?? '').localeCompare(b.finishedAt ?? ''))
    .map((node) => withoutUndefined({ name: node.displayName ?? node.name ?? '?', type: node.type, message: node.message }));
  return withoutUndefined({ name: workflow.metadata.name, phase: workflow.status?.phase ?? '', message: workflow.status?.message, failedNodes: failed });
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}
