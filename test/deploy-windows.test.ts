import { msUntilWindowOpens } from '../common/deploy-windows';
import type { DeployWindow } from '../common/catalogue';

const WORKING_HOURS: DeployWindow = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:30', to: '17:00', timezone: 'Europe/London' };
const at = (iso: string) => Date.parse(iso);

describe('deploy windows', () => {
  it('is open inside the window, in the window’s time zone (BST is UTC+1 in summer)', () => {
    expect(msUntilWindowOpens([WORKING_HOURS], at('2026-07-01T08:30:00Z'))).toBe(0); // 09:30 in London
    expect(msUntilWindowOpens([WORKING_HOURS], at('2026-07-01T15:59:59Z'))).toBe(0);
  });

  it('waits until the window opens later the same day', () => {
    expect(msUntilWindowOpens([WORKING_HOURS], at('2026-07-01T07:30:00Z'))).toBe(3_600_000);
  });

  it('waits over the weekend to Monday morning, in winter time (GMT)', () => {
    // Friday 17:00 GMT → Monday 09:30 GMT
    expect(msUntilWindowOpens([WORKING_HOURS], at('2026-12-04T17:00:00Z'))).toBe((2 * 24 + 16) * 3_600_000 + 30 * 60_000);
  });

  it('handles the change to summer time between now and the opening', () => {
    // Saturday 28 March 2026 12:00 GMT → Monday 30 March 09:30 BST = 08:30 UTC
    expect(msUntilWindowOpens([WORKING_HOURS], at('2026-03-28T12:00:00Z'))).toBe(at('2026-03-30T08:30:00Z') - at('2026-03-28T12:00:00Z'));
  });

  it('takes the soonest of several windows and is always open without windows', () => {
    const evening: DeployWindow = { days: ['wed'], from: '19:00:30', to: '20:00', timezone: 'UTC' };
    expect(msUntilWindowOpens([WORKING_HOURS, evening], at('2026-07-01T18:00:00Z'))).toBe(3_630_000);
    expect(msUntilWindowOpens([], at('2026-07-01T18:00:00Z'))).toBe(0);
  });
});
