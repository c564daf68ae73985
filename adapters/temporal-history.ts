/**
 * A pipeline run's own history, read from the Temporal server with the worker's client (its connection and token):
 * what the temporal-principal channel needs to know who sent a decision signal.
 */
import type { Client } from '@temporalio/client';
import { arrayFromPayloads, defaultPayloadConverter, optionalTsToMs } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import type { RecordedSignal, WorkflowHistory } from '../common/ports';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/**
 * The `ordinal`-th signal named `name` among pages of events, read no further than it. Signals are decoded with
 * the default payload converter: the worker uses no other, and no codec.
 */
export async function nthSignalIn(pages: AsyncIterable<HistoryEvent[]>, name: string, ordinal: number): Promise<RecordedSignal | undefined> {
  if (!Number.isSafeInteger(ordinal) || ordinal < 1) return undefined;
  let seen = 0;
  for await (const events of pages) {
    for (const event of events) {
      const signaled = event.workflowExecutionSignaledEventAttributes;
      if (signaled?.signalName !== name || ++seen < ordinal) continue;
      const at = optionalTsToMs(event.eventTime);
      const principal = event.principal?.type || event.principal?.name ? { type: event.principal.type ?? '', name: event.principal.name ?? '' } : undefined;
      return {
        eventId: String(event.eventId ?? ''),
        ...(at !== undefined ? { time: new Date(at).toISOString() } : {}),
        args: arrayFromPayloads(defaultPayloadConverter, signaled.input?.payloads),
        ...(principal ? { principal } : {}),
      };
    }
  }
  return undefined;
}

/** `clientOf`: the client to read with, asked at each read (the worker's, which exists once the worker runs). */
export function createTemporalWorkflowHistory(clientOf: () => Client): WorkflowHistory {
  async function* pagesOf(run: { workflowId: string; runId: string }): AsyncIterable<HistoryEvent[]> {
    const client = clientOf();
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await client.workflowService.getWorkflowExecutionHistory({
        namespace: client.options.namespace,
        execution: { workflowId: run.workflowId, runId: run.runId },
        nextPageToken,
        skipArchival: true,
      });
      yield page.history?.events ?? [];
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
  }
  return {
    nthSignal: (run, name, ordinal) => nthSignalIn(pagesOf(run), name, ordinal),
  };
}
