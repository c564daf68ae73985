import { randomUUID } from 'node:crypto';
import { hasToken, json, Simulator, type SimRequest, type SimResponse } from './http';

/**
 * One cluster's Argo Workflows server (argo-server): submit a WorkflowTemplate, get a workflow, stop it, as
 * `POST /api/v1/workflows/{namespace}/submit`, `GET /api/v1/workflows/{namespace}/{name}` and
 * `PUT /api/v1/workflows/{namespace}/{name}/stop` answer, errors in grpc-gateway's shape. A submitted workflow goes
 * Pending, Running, then ends as the outcome set for its app says: the app is the one its parameters pick
 * (`--grep=@app-<app>`, or an `app` parameter), as GOV.UK's end-to-end suite picks the tests tagged for it.
 */

export type SuiteOutcome =
  | { result: 'pass' }
  /** The suite's pod fails; `message` is the node's, as Argo reports a container's exit. */
  | { result: 'fail'; node?: string; message?: string }
  /** The workflow itself errs (the controller could not run it). */
  | { result: 'error'; message?: string }
  /** Runs until stopped. */
  | { result: 'hang' };

export interface ArgoWorkflowsSimulatorOptions {
  token: string;
  /** The environment whose cluster this is, for its messages. */
  cluster: string;
  namespace?: string;
  /** The WorkflowTemplates of the namespace, by name, with the parameters each declares. */
  templates: Record<string, { parameters: string[] }>;
  /** From submission until the suite ends. */
  runMs?: number;
  host?: string;
  port?: number;
}

interface NodeJson {
  id: string;
  name: string;
  displayName: string;
  type: 'Steps' | 'Pod';
  templateName: string;
  phase: string;
  message?: string;
  startedAt: string;
  finishedAt?: string;
}

export interface SimWorkflow {
  name: string;
  namespace: string;
  uid: string;
  template: string;
  parameters: Record<string, string>;
  labels: Record<string, string>;
  app?: string;
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Error';
  message?: string;
  createdAt: Date;
  finishedAt?: Date;
  nodes: NodeJson[];
  /** Set by a stop request, with its message. */
  stopped?: string;
  /** Runs until stopped, or until its app's outcome is set to another. */
  hanging?: boolean;
}

export class ArgoWorkflowsSimulator extends Simulator {
  readonly workflows: SimWorkflow[] = [];
  private readonly outcomes = new Map<string, SuiteOutcome>();
  private readonly nextOutcomes = new Map<string, SuiteOutcome[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly namespace: string;

  constructor(private readonly options: ArgoWorkflowsSimulatorOptions) {
    super({
      host: options.host,
      port: options.port,
      notFound: (request) => this.unauthorized(request) ?? grpcError(404, 5, 'Not Found'),
      invalidJson: () => grpcError(400, 3, 'invalid character in JSON body'),
    });
    this.namespace = options.namespace ?? 'argo';
    this.server.route('POST', /^\/api\/v1\/workflows\/([^/]+)\/submit$/, (req) => this.submit(req));
    this.server.route('GET', /^\/api\/v1\/workflows\/([^/]+)\/([^/]+)$/, (req) => this.get(req));
    this.server.route('PUT', /^\/api\/v1\/workflows\/([^/]+)\/([^/]+)\/stop$/, (req) => this.stop(req));
  }

  /** Every later run of the app's suite (`*`: of any app) ends so; so do its runs that hang now. */
  setOutcome(app: string, outcome: SuiteOutcome): void {
    this.outcomes.set(app, outcome);
    if (outcome.result === 'hang') return;
    for (const workflow of this.workflows.filter((candidate) => candidate.phase === 'Running' && candidate.hanging && (app === '*' || candidate.app === app))) {
      this.later(0, () => this.end(workflow, outcome));
    }
  }

  /** The next run of the app's suite ends so, before the outcome set for it. */
  queueOutcome(app: string, outcome: SuiteOutcome): void {
    this.nextOutcomes.set(app, [...(this.nextOutcomes.get(app) ?? []), outcome]);
  }

  workflowsOf(app: string): SimWorkflow[] {
    return this.workflows.filter((workflow) => workflow.app === app);
  }

  protected override async afterClose(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private unauthorized(req: SimRequest): SimResponse | undefined {
    if (hasToken(req.headers, this.options.token)) return undefined;
    return grpcError(401, 16, req.headers.authorization ? 'token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/' : 'token not found');
  }

  private submit(req: SimRequest): SimResponse {
    const denied = this.unauthorized(req);
    if (denied) return denied;
    const namespace = req.params[0]!;
    const body = (req.body ?? {}) as { resourceKind?: unknown; resourceName?: unknown; submitOptions?: { name?: unknown; parameters?: unknown; labels?: unknown } };
    if (body.resourceKind !== 'WorkflowTemplate') return grpcError(400, 3, `Resource kind '${String(body.resourceKind ?? '')}' is not supported for submitting`);
    const template = typeof body.resourceName === 'string' ? body.resourceName : '';
    const declared = namespace === this.namespace ? this.options.templates[template] : undefined;
    if (!declared) return grpcError(400, 3, `workflowtemplates.argoproj.io "${template}" not found (the ${this.options.cluster} cluster, namespace ${namespace})`);
    const options = body.submitOptions ?? {};
    const parameters: Record<string, string> = {};
    for (const entry of Array.isArray(options.parameters) ? (options.parameters as unknown[]) : []) {
      const [key, ...rest] = String(entry).split('=');
      if (rest.length === 0) return grpcError(500, 13, `expected parameter of the form: NAME=VALUE. Received: ${String(entry)}`);
      if (!declared.parameters.includes(key!)) return grpcError(400, 3, `parameter "${key}" is not declared by WorkflowTemplate ${template}`);
      parameters[key!] = rest.join('=');
    }
    const name = typeof options.name === 'string' && options.name ? options.name : `${template}-${randomUUID().slice(0, 5)}`;
    if (this.workflows.some((workflow) => workflow.namespace === namespace && workflow.name === name)) {
      return grpcError(409, 6, `workflows.argoproj.io "${name}" already exists`);
    }
    const labels = Object.fromEntries(
      String(options.labels ?? '')
        .split(',')
        .filter(Boolean)
        .map((pair) => pair.split('=') as [string, string]),
    );
    const app = /--grep=@app-([^\s]+)/.exec(Object.values(parameters).join(' '))?.[1] ?? parameters.app;
    const workflow: SimWorkflow = { name, namespace, uid: randomUUID(), template, parameters, labels, app, phase: 'Pending', createdAt: new Date(), nodes: [] };
    this.workflows.push(workflow);
    // The outcome is the one set when the workflow is submitted, as a suite runs the code of that moment.
    const key = app ?? '*';
    const outcome = this.nextOutcomes.get(key)?.shift() ?? this.outcomes.get(key) ?? this.outcomes.get('*') ?? { result: 'pass' };
    this.later(20, () => this.begin(workflow, outcome));
    return json(200, this.workflowJson(workflow));
  }

  private begin(workflow: SimWorkflow, outcome: SuiteOutcome): void {
    if (workflow.phase !== 'Pending') return;
    const now = new Date().toISOString();
    workflow.phase = 'Running';
    workflow.nodes = [
      { id: workflow.name, name: workflow.name, displayName: workflow.name, type: 'Steps', templateName: 'main', phase: 'Running', startedAt: now },
      { id: `${workflow.name}-1`, name: `${workflow.name}[0].e2e-tests`, displayName: 'e2e-tests', type: 'Pod', templateName: 'e2e-tests', phase: 'Running', startedAt: now },
    ];
    if (outcome.result === 'hang') {
      workflow.hanging = true;
      return;
    }
    this.later(this.options.runMs ?? 200, () => this.end(workflow, outcome));
  }

  private end(workflow: SimWorkflow, outcome: Exclude<SuiteOutcome, { result: 'hang' }>): void {
    if (workflow.phase !== 'Running') return;
    const [root, pod] = workflow.nodes as [NodeJson, NodeJson];
    const finishedAt = new Date().toISOString();
    if (outcome.result === 'pass') {
      for (const node of workflow.nodes) Object.assign(node, { phase: 'Succeeded', finishedAt });
      workflow.phase = 'Succeeded';
    } else if (outcome.result === 'fail') {
      if (outcome.node) pod.displayName = outcome.node;
      Object.assign(pod, { phase: 'Failed', message: outcome.message ?? 'Error (exit code 1)', finishedAt });
      Object.assign(root, { phase: 'Failed', message: 'child failed', finishedAt });
      workflow.phase = 'Failed';
      workflow.message = 'child failed';
    } else {
      Object.assign(pod, { phase: 'Error', message: 'pod deleted', finishedAt });
      Object.assign(root, { phase: 'Error', finishedAt });
      workflow.phase = 'Error';
      workflow.message = outcome.message ?? 'pod deleted';
    }
    workflow.finishedAt = new Date();
  }

  private get(req: SimRequest): SimResponse {
    const denied = this.unauthorized(req);
    if (denied) return denied;
    const workflow = this.workflows.find((candidate) => candidate.namespace === req.params[0] && candidate.name === req.params[1]);
    if (!workflow) return grpcError(404, 5, `workflows.argoproj.io "${req.params[1]}" not found`);
    return json(200, this.workflowJson(workflow));
  }

  private stop(req: SimRequest): SimResponse {
    const denied = this.unauthorized(req);
    if (denied) return denied;
    const workflow = this.workflows.find((candidate) => candidate.namespace === req.params[0] && candidate.name === req.params[1]);
    if (!workflow) return grpcError(404, 5, `workflows.argoproj.io "${req.params[1]}" not found`);
    const message = String((req.body as { message?: unknown } | undefined)?.message ?? '');
    if (workflow.phase === 'Pending' || workflow.phase === 'Running') {
      const finishedAt = new Date().toISOString();
      for (const node of workflow.nodes) Object.assign(node, { phase: 'Failed', message: 'workflow shutdown with strategy:  Stop', finishedAt });
      workflow.phase = 'Failed';
      workflow.message = `Stopped with strategy 'Stop'${message ? `: ${message}` : ''}`;
      workflow.finishedAt = new Date();
      workflow.stopped = message;
    }
    return json(200, this.workflowJson(workflow));
  }

  private later(ms: number, work: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      work();
    }, ms);
    this.timers.add(timer);
  }

  private workflowJson(workflow: SimWorkflow): Record<string, unknown> {
    return {
      metadata: {
        name: workflow.name,
        namespace: workflow.namespace,
        uid: workflow.uid,
        creationTimestamp: argoTime(workflow.createdAt),
        labels: { ...workflow.labels, 'workflows.argoproj.io/workflow-template': workflow.template, ...(workflow.phase !== 'Pending' ? { 'workflows.argoproj.io/phase': workflow.phase } : {}) },
      },
      spec: { workflowTemplateRef: { name: workflow.template }, arguments: { parameters: Object.entries(workflow.parameters).map(([name, value]) => ({ name, value })) }, ...(workflow.stopped !== undefined ? { shutdown: 'Stop' } : {}) },
      status: {
        ...(workflow.phase === 'Pending' && workflow.nodes.length === 0 ? {} : { phase: workflow.phase }),
        startedAt: argoTime(workflow.createdAt),
        finishedAt: workflow.finishedAt ? argoTime(workflow.finishedAt) : null,
        ...(workflow.message ? { message: workflow.message } : {}),
        nodes: Object.fromEntries(workflow.nodes.map((node) => [node.id, { ...node }])),
      },
    };
  }
}

/** grpc-gateway's error body, as argo-server answers. */
function grpcError(status: number, code: number, message: string): SimResponse {
  return json(status, { code, message });
}

function argoTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
