import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { workflowBundlePath } from './support/temporal';

/**
 * Pipelines wait days for approval, so a worker upgrade must replay every stored history exactly.
 * A failure here means running pipelines would break: guard the change with patched() instead.
 */
const HISTORIES = join(__dirname, 'histories');
/**
 * One history per shape at the top; histories recorded before a patched() change go in a folder of their own
 * (`before-<change>/`) until the patch is removed, so both paths of the guard stay covered.
 */
interface StoredEvent {
  markerRecordedEventAttributes?: { markerName?: string; details?: { data?: { payloads?: Array<{ data?: string }> } } };
  activityTaskScheduledEventAttributes?: { activityType?: { name?: string } };
  workflowExecutionSignaledEventAttributes?: { signalName?: string; input?: { payloads?: Array<{ data?: string }> } };
}

const files = readdirSync(HISTORIES, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.json')).sort();

describe('replaying stored histories with the current workflow code', () => {
  it('has a history for every pipeline shape and for the lane', () => {
    const shapes = files.filter((f) => !f.includes('/')).map((f) => f.replace(/\.json$/, ''));
    for (const shape of ['cd-to-production', 'awaiting-approval', 'approved', 'rejected', 'expired', 'superseded', 'cancelled', 'rolled-back', 'manual', 'manual-approved', 'frozen-then-deployed', 'charts-flags-promoted', 'suite-rolled-back', 'suite-cancelled', 'superseded-on-its-way', 'lane']) {
      expect(shapes).toContain(shape);
    }
  });

  it("runs 1.3's quick steps as local activities, and the steps whose result must be in history first as activities", () => {
    const stepsOf = (file: string) => {
      const { events } = JSON.parse(readFileSync(join(HISTORIES, file), 'utf8')) as { events: StoredEvent[] };
      const local = events.flatMap((e) => {
        const data = e.markerRecordedEventAttributes?.markerName === 'core_local_activity' ? e.markerRecordedEventAttributes.details?.data?.payloads?.[0]?.data : undefined;
        return data ? [(JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { activity_type: string }).activity_type] : [];
      });
      return { local: new Set(local), activities: new Set(events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [])) };
    };
    const now = stepsOf('cd-to-production.json');
    for (const quick of ['resolveRelease', 'imageExists', 'bumpImageTag', 'tagImage', 'notifyReleaseApp']) expect(now.local).toContain(quick);
    expect([...now.activities].sort()).toEqual(['compareWithDeployed', 'runSmokeTests', 'signalLane', 'waitForArgoSync', 'waitForImage']);
    const before = stepsOf('before-1.3/cd-to-production.json');
    expect(before.local.size).toBe(0);
    expect(before.activities).toContain('bumpImageTag');
  });

  it("holds 1.4's wait for a newer commit on its way: the lane named it, then said it had deployed", () => {
    const { events } = JSON.parse(readFileSync(join(HISTORIES, 'superseded-on-its-way.json'), 'utf8')) as { events: StoredEvent[] };
    const heard = events.flatMap((e) => {
      const signal = e.workflowExecutionSignaledEventAttributes;
      const data = signal?.signalName === 'newerFollows' ? signal.input?.payloads?.[0]?.data : undefined;
      return data ? [JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { environment: string; newer?: unknown; deployed?: boolean }] : [];
    });
    expect(heard).toEqual([
      { environment: 'integration', newer: expect.any(Object) },
      { environment: 'integration', newer: expect.any(Object), deployed: true },
    ]);
    const scheduled = (name: string) => events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === name);
    // It asked for integration's lane only, and looked at what integration runs twice: before its bump, and before
    // taking the lane's word that the newer commit deployed there.
    expect(scheduled('signalLane')).toHaveLength(1);
    expect(scheduled('compareWithDeployed')).toHaveLength(2);
  });

  it.each(files)('replays %s without non-determinism', async (file) => {
    // The worker parses the proto3 JSON itself (parsing it here would meet jest's second copy of protobufjs).
    const history: unknown = JSON.parse(readFileSync(join(HISTORIES, file), 'utf8'));
    await Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() } }, history, file.replace(/\.json$/, '').replace('/', '-'));
  });
});
