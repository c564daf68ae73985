import type { Notifier } from '../../common/ports';
import { sendRequest } from './http-errors';

/** Slack incoming webhook. The webhook URL is the secret: it never appears in an error. */
export function createSlackNotifier(options: { webhookUrl: string; timeoutMs?: number }): Notifier {
  return {
    async notify(text) {
      await sendRequest({
        service: 'Slack',
        method: 'POST',
        url: options.webhookUrl,
        body: { text },
        secrets: [options.webhookUrl, new URL(options.webhookUrl).pathname],
        timeoutMs: options.timeoutMs ?? 10_000,
      });
    },
  };
}
