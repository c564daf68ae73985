/**
 * Who a Temporal principal is on GitHub. Temporal server 1.31, with an authorizer and
 * `frontend.enablePrincipalPropagation`, stamps each history event with the principal of the call that wrote it,
 * `{ type, name }` (the JWT authorizer's is `{ type: 'jwt', name: <the token's sub> }`). The worker's settings say
 * which of those principals is which GitHub login: `DEPLOY_TEMPORAL_PRINCIPALS="jwt:<sub>=<login>,…"`.
 */
import { validateApprover } from './names';

export interface TemporalPrincipal {
  type: string;
  name: string;
}

/** The mapping's key for a principal: `type:name`, as written in the setting. */
export function principalKey(principal: TemporalPrincipal): string {
  return `${principal.type}:${principal.name}`;
}

/** Principal types are short words (`jwt`, `users`, …); names are anything the identity provider puts in them. */
const PRINCIPAL = /^([A-Za-z0-9_.-]{1,50}):(\S.{0,499})$/;

/**
 * Parses `type:name=login` entries, separated by commas or line breaks; a name may hold `=` (the login, after the
 * last one, cannot), not a comma. Returns the mapping and every problem, each naming its entry.
 */
export function parsePrincipalLogins(text: string, setting = 'DEPLOY_TEMPORAL_PRINCIPALS'): { logins: Map<string, string>; problems: string[] } {
  const logins = new Map<string, string>();
  const problems: string[] = [];
  for (const entry of text.split(/[,\n]/).map((e) => e.trim()).filter(Boolean)) {
    const at = entry.lastIndexOf('=');
    const principal = (at < 0 ? entry : entry.slice(0, at)).trim();
    const login = at < 0 ? '' : entry.slice(at + 1).trim();
    const shown = entry.slice(0, 120);
    if (at < 0 || !login) {
      problems.push(`${setting}: "${shown}" does not say which GitHub login it is: write <type>:<name>=<login>, such as jwt:alice@example.org=alice`);
      continue;
    }
    if (!PRINCIPAL.test(principal)) {
      problems.push(`${setting}: "${principal.slice(0, 120)}" is not a Temporal principal: write <type>:<name>, such as jwt:alice@example.org (the type the server records, then the name)`);
      continue;
    }
    try {
      validateApprover(login);
    } catch {
      problems.push(`${setting}: "${login.slice(0, 60)}" (for ${principal.slice(0, 120)}) is not a GitHub login (letters, digits and hyphens, at most 39 characters)`);
      continue;
    }
    const earlier = logins.get(principal);
    if (earlier !== undefined && earlier.toLowerCase() !== login.toLowerCase()) {
      problems.push(`${setting}: ${principal.slice(0, 120)} is mapped twice, to ${earlier} and to ${login}`);
      continue;
    }
    logins.set(principal, login);
  }
  if (problems.length === 0 && logins.size === 0) problems.push(`${setting} is set but maps no principal: unset it to turn the temporal-principal channel off`);
  return { logins, problems };
}
