// Support's hours and speed above a new request, from GET /api/widget/v1/availability:
// "We're back Mon 09:00; we'll reply by Mon 17:00." outside the coverage hours, and
// "Support usually replies within 2 hours." from recent first responses and the queue.
// Loaded with the new-request view; `when` (views.js) writes times as the rest of the panel.

import { api } from "./articles.js";

// a duration in the visitor's language, rounded up: 5-minute steps, then hours, then days
function span(seconds) {
  const hours = seconds / 3600;
  const [value, unit] = hours < 1 ? [Math.max(5, Math.ceil(seconds / 300) * 5), "minute"]
    : hours < 48 ? [Math.ceil(hours), "hour"] : [Math.ceil(hours / 24), "day"];
  return new Intl.NumberFormat(undefined, { style: "unit", unit, unitDisplay: "long" }).format(value);
}

export function fill(panel, node, when) {
  return api(panel, `availability?site=${encodeURIComponent(panel.config.site)}`).then((data) => {
    const words = [];
    if (!data.open_now && data.opens_at) words.push(`We're back ${when(data.opens_at)}; we'll reply by ${when(data.reply_by)}.`);
    if (data.usual_reply_seconds !== null) words.push(`Support usually replies within ${span(data.usual_reply_seconds)}.`);
    node.textContent = words.join(" ");
  }).catch(() => {});
}
