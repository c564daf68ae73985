/**
 * A pipeline's steps as its history shows them, whether activities (scheduled, then completed) or local
 * activities (one marker each, written with the workflow task that ran them, from 1.3 on).
 */
import type { temporal } from '@temporalio/proto';
import { localActivityMarker } from '../../harness/local-activity-markers';

export { localActivityMarker };

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface HistoryStep {
  activityType: string;
  /** Where the step is in the events: its ActivityTaskScheduled, or its marker. */
  index: number;
  local: boolean;
  /** Completed (a local activity's marker may record a failure instead). */
  completed: boolean;
  /** The attempt that ended it (for an activity, the last one started). */
  attempt?: number;
}

export function stepsInHistory(events: HistoryEvent[]): HistoryStep[] {
  const steps: HistoryStep[] = [];
  events.forEach((event, index) => {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const id = String(event.eventId);
      const ofThis = events.filter((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId ?? e.activityTaskCompletedEventAttributes?.scheduledEventId) === id);
      const started = ofThis.filter((e) => e.activityTaskStartedEventAttributes).at(-1);
      steps.push({
        activityType: scheduled.activityType!.name!,
        index,
        local: false,
        completed: ofThis.some((e) => e.activityTaskCompletedEventAttributes),
        attempt: started?.activityTaskStartedEventAttributes?.attempt ?? undefined,
      });
      return;
    }
    const marker = localActivityMarker(event);
    if (marker) steps.push({ activityType: marker.activity_type, index, local: true, completed: !event.markerRecordedEventAttributes!.failure, attempt: marker.attempt });
  });
  return steps;
}

/** The workflow task whose completion wrote the event at `index`: the last WorkflowTaskCompleted before it. */
export function workflowTaskOf(events: HistoryEvent[], index: number): number {
  for (let i = index; i >= 0; i--) if (events[i]!.workflowTaskCompletedEventAttributes) return i;
  return -1;
}
