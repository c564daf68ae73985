import type { DeployWindow } from './catalogue';

/** When automatic deploys may run: wall-clock windows on chosen days, in the window's own time zone. */

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DAY_MS = 86_400_000;

function secondsOfDay(clock: string): number {
  const [h, m, s] = clock.split(':').map(Number);
  return h! * 3600 + m! * 60 + (s ?? 0);
}

/** The wall-clock reading of `instant` in `timeZone`, expressed as if that reading were UTC. */
function wallClockAsUtc(instant: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(instant));
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
}

/** The instant at which the clocks of `timeZone` read `wallClock` (a wall-clock reading expressed as UTC). */
function instantOf(wallClock: number, timeZone: string): number {
  let guess = wallClock;
  // Two corrections settle the offset, also across a daylight-saving change.
  for (let i = 0; i < 2; i++) guess = wallClock - (wallClockAsUtc(guess, timeZone) - guess);
  return guess;
}

/** 0 when a window is open at `now`; otherwise how long until the next one opens (within a week). */
export function msUntilWindowOpens(windows: readonly DeployWindow[], now: number): number {
  if (windows.length === 0) return 0;
  let soonest = Number.POSITIVE_INFINITY;
  for (const window of windows) {
    const today = Math.floor(wallClockAsUtc(now, window.timezone) / DAY_MS) * DAY_MS;
    for (let offset = -1; offset <= 7; offset++) {
      const day = today + offset * DAY_MS;
      const weekday = WEEKDAYS[(new Date(day).getUTCDay() + 6) % 7]!;
      if (!window.days.includes(weekday)) continue;
      const opens = instantOf(day + secondsOfDay(window.from) * 1000, window.timezone);
      const closes = instantOf(day + secondsOfDay(window.to) * 1000, window.timezone);
      if (opens <= now && now < closes) return 0;
      if (opens > now) soonest = Math.min(soonest, opens - now);
    }
  }
  return soonest;
}
