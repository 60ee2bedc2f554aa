// What a new request's view loads: support's hours and speed above it, from
// GET /api/widget/v1/availability ("We're back Mon 09:00; we'll reply by Mon 17:00." outside
// the coverage hours, "Support usually replies within 2 hours." from recent first responses
// and the queue), articles that may answer what the visitor is writing, and the offer of a
// follow-up on a closed ticket. `when` (views.js) writes times as the rest of the panel does.

import { h } from "./dom.js";
import { api, results } from "./articles.js";

// a duration in the visitor's language, rounded up: 5-minute steps, then hours, then days
function span(seconds) {
  const hours = seconds / 3600;
  const [value, unit] = hours < 1 ? [Math.max(5, Math.ceil(seconds / 300) * 5), "minute"]
    : hours < 48 ? [Math.ceil(hours), "hour"] : [Math.ceil(hours / 24), "day"];
  return new Intl.NumberFormat(undefined, { style: "unit", unit, unitDisplay: "long" }).format(value);
}

export function note(panel, node, when) {
  return api(panel, `availability?site=${encodeURIComponent(panel.config.site)}`).then((data) => {
    const words = [];
    if (!data.open_now && data.opens_at) words.push(`We're back ${when(data.opens_at)}; we'll reply by ${when(data.reply_by)}.`);
    if (data.usual_reply_seconds !== null) words.push(`Support usually replies within ${span(data.usual_reply_seconds)}.`);
    node.textContent = words.join(" ");
    node.hidden = !words.length;
  }).catch(() => {});
}

// articles that may answer the request, while it is written
export function suggestions(panel, textarea) {
  const list = h("ul", { class: "results suggestions", "aria-live": "polite" });
  const box = h("div", { hidden: true }, h("p", { class: "hint", text: "These articles may answer it:" }), list);
  let timer = 0;
  const look = () => {
    const text = textarea.value.trim();
    if (text.length < 4) { box.hidden = true; return; }
    api(panel, `articles?site=${encodeURIComponent(panel.config.site)}&q=${encodeURIComponent(text.slice(0, 200))}&limit=3`)
      .then((data) => {
        list.replaceChildren(...results(panel, data.articles.slice(0, 3)));
        box.hidden = !data.articles.length;
      }).catch(() => {});
  };
  textarea.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(look, 400); });
  // this module loads after the view opens: text typed or pasted before it arrived counts too
  if (textarea.value.trim()) look();
  return box;
}

// in place of the composer of a closed ticket: a new request linked to it
export function followUp(panel, node, ticket) {
  node.replaceChildren(h("p", { class: "hint", text: "This request is closed." }),
    h("button", { type: "button", class: "primary", text: "Start a follow-up",
      onclick: () => panel.show({ name: "new", followUp: ticket }) }));
}
