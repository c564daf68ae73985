import type { SmokeCheck, SmokeCheckOutcome, SmokeTester } from '../common/ports';
import { describeNetworkError, displayUrl, excerpt } from './http-client';

export interface HttpSmokeTesterOptions {
  fetch?: typeof fetch;
  userAgent?: string;
}

/** Runs one HTTP check; never throws, the outcome's detail says what happened. */
export function createHttpSmokeTester(options: HttpSmokeTesterOptions = {}): SmokeTester {
  const doFetch = options.fetch ?? fetch;
  const userAgent = options.userAgent ?? 'durable-deploy-pipelines smoke test';

  return {
    async run(check: SmokeCheck): Promise<SmokeCheckOutcome> {
      const what = `GET ${displayUrl(check.url)}`;
      const outcome = (ok: boolean, detail: string): SmokeCheckOutcome => ({ check, ok, detail });

      let url: URL;
      try {
        url = new URL(check.url);
      } catch {
        return outcome(false, `${what} failed: not a valid URL`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return outcome(false, `${what} failed: only http and https URLs can be checked`);

      const started = Date.now();
      let status: number;
      let body: string;
      try {
        const response = await doFetch(url, {
          method: 'GET',
          headers: { 'user-agent': userAgent, accept: '*/*', 'cache-control': 'no-cache' },
          // The timeout covers reading the body too: a response that stalls halfway is a failure.
          signal: AbortSignal.timeout(check.timeoutMs),
          // A check that expects a redirect must see it rather than where it leads.
          redirect: check.expectStatus >= 300 && check.expectStatus < 400 ? 'manual' : 'follow',
        });
        status = response.status;
        body = await response.text();
      } catch (err) {
        const problem = describeNetworkError(err);
        return outcome(false, problem.timedOut ? `${what} timed out after ${check.timeoutMs} ms` : `${what} failed: ${problem.description}`);
      }
      const elapsed = Date.now() - started;

      if (status !== check.expectStatus) {
        const shown = excerpt(body);
        return outcome(false, `${what} returned ${status}, expected ${check.expectStatus}${shown ? `; body: ${shown}` : ''}`);
      }
      if (check.expectBodyContains !== undefined && !body.includes(check.expectBodyContains)) {
        const shown = excerpt(body);
        return outcome(false, `${what} returned ${status} but the body did not contain ${JSON.stringify(check.expectBodyContains)}${shown ? `; body: ${shown}` : '; the body was empty'}`);
      }
      const contained = check.expectBodyContains !== undefined ? ` containing ${JSON.stringify(check.expectBodyContains)}` : '';
      return outcome(true, `${what} returned ${status}${contained} in ${elapsed} ms`);
    },
  };
}
