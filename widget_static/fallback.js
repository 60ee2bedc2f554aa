// The HTTP fallback: websockets can be blocked while plain HTTPS works. The outbox's
// entries, in order, one POST /api/widget/v1/messages each (same client_msg_id); the answers
// are handled like the socket's frames. Loaded by panel.js only when the socket fails.

import { PERMANENT } from "./outbox.js";

export async function flushHttp(panel) {
  if (panel.httpBusy || !panel.token || panel.link.online) return;
  panel.httpBusy = true;
  try {
    for (const item of [...panel.outbox.items]) {
      if (!panel.outbox.sendable(item)) continue;
      const response = await fetch(`${panel.config.server}/api/widget/v1/messages`, {
        method: "POST", mode: "cors", credentials: "omit", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ site: panel.config.site, token: panel.token, ...panel.outbox.payload(item) }),
      });
      const data = await response.json();
      if (!response.ok) {
        if (!PERMANENT.has(data.error && data.error.code)) break;
        panel.outbox.fail(item, data.error.message);
        continue;
      }
      panel.onAck(data.ack);
      for (const message of data.messages) if (message.seq !== data.ack.seq) panel.onMessage(message);
    }
  } catch { /* still offline: the outbox keeps everything */ } finally {
    panel.httpBusy = false;
    panel.render();
  }
}
