import type { LaneQueue } from '../../workflows/lane-queue';

/** Answers every compare the lane asks for as GitHub would, later letters being newer commits. Returns how many. */
export function rankBySha(q: LaneQueue): number {
  let compares = 0;
  for (let pair = q.pairToRank(); pair; pair = q.pairToRank()) {
    const [earlier, later] = pair;
    compares++;
    if (later.sha > earlier.sha) q.ranked(earlier, later);
    else q.ranked(later, earlier);
  }
  return compares;
}
