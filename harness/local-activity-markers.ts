/**
 * A local activity's marker in a workflow's history, read: SDK Core writes one per local activity (marker name
 * `core_local_activity`, its data a JSON payload). The bench and the tests read steps from histories with it.
 */
import type { temporal } from '@temporalio/proto';

type Time = { seconds: number; nanos: number };

export interface LocalActivityMarker {
  activity_type: string;
  /** Its sequence number in the run, as the worker's activity info gives it. */
  activity_id: string;
  attempt: number;
  /** Set when the attempt failed and another follows after this backoff (on a timer). */
  backoff?: Time;
  /** When the workflow asked for it (it starts at once), by the worker's clock. */
  original_schedule_time?: Time;
}

export function localActivityMarker(event: temporal.api.history.v1.IHistoryEvent): LocalActivityMarker | undefined {
  const marker = event.markerRecordedEventAttributes;
  const data = marker?.markerName === 'core_local_activity' ? marker.details?.data?.payloads?.[0]?.data : undefined;
  return data ? (JSON.parse(Buffer.from(data).toString('utf8')) as LocalActivityMarker) : undefined;
}

export function timeMs(time: Time): number {
  return time.seconds * 1000 + time.nanos / 1e6;
}
