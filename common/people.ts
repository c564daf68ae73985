/**
 * Lists of people in the catalogue (approvers, deployers): GitHub logins, `@org/team`s, or `anyone` alone. No
 * Node imports: the workflow bundle uses it.
 */
export const ANYONE = 'anyone';

export const isTeam = (entry: string): boolean => entry.startsWith('@');

/**
 * Whether the login is among the people: `anyone`, the login itself (in any case), or a member of a team on the
 * list, asked one team after another until one has them.
 */
export async function isAmong(login: string, people: readonly string[], isMember: (team: string) => Promise<boolean>): Promise<boolean> {
  if (people.includes(ANYONE) || people.some((entry) => entry.toLowerCase() === login.toLowerCase())) return true;
  for (const team of people.filter(isTeam)) {
    if (await isMember(team)) return true;
  }
  return false;
}
