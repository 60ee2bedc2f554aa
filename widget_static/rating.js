// "How did we do?" under a solved request, loaded when one is first shown. A radio group of
// five scores (arrow keys move within it, as for any radio group) and an optional comment;
// once rated, the score with a way to change it while the server allows (7 days). The
// visitor token travels in a header, never in a URL; everything shown is textContent.

import { h } from "./dom.js";

const LABELS = ["Very bad", "Bad", "OK", "Good", "Very good"];
const CSS = `.rating{border-top:1px solid #e5e7eb;padding-top:8px;display:flex;flex-direction:column;gap:6px}
.rating .scores{display:flex;gap:6px;border:0;padding:0;flex-wrap:wrap}
.rating .scores label{display:flex;flex-direction:column;align-items:center;min-width:44px;padding:4px;border:1px solid #6b7280;border-radius:8px;cursor:pointer;font-size:13px}
.rating .scores label:has(input:checked){background:#1a56db;color:#fff;border-color:#1a56db}
.rating .scores input{margin:0}
.rating legend,.rating .given{font-weight:600;margin:0}`;
let adopted = false;

function adopt(root) {
  if (adopted) return;
  adopted = true;
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
}

async function send(panel, body) {
  await panel.ready;
  const response = await fetch(`${panel.config.server}/api/widget/v1/ratings`, {
    method: "POST", mode: "cors", credentials: "omit",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${panel.token}` },
    body: JSON.stringify({ site: panel.config.site, ...body }),
  });
  const data = await response.json();
  if (!response.ok) throw new Error((data.error && data.error.message) || String(response.status));
  return data.rating;
}

// the slot's content for the conversation's solved or closed ticket
export function ratingView(panel, conversation, ticket) {
  adopt(panel.root);
  const box = h("div", { class: "rating" });
  let given = ticket.rating;
  const summary = () => {
    const open = Date.parse(given.changeable_until) > Date.now();
    box.replaceChildren(
      h("p", { class: "given", text: `You rated this ${given.score} out of 5 (${LABELS[given.score - 1]}). Thank you!` }),
      open ? h("button", { type: "button", class: "link", text: "Change my rating", onclick: form }) : null);
  };
  const form = () => {
    const status = h("p", { class: "status", role: "status" });
    const choices = LABELS.map((label, index) => h("label", { title: label },
      h("input", { type: "radio", name: "score", value: String(index + 1), required: true,
        "aria-label": `${index + 1}, ${label}`, checked: Boolean(given && given.score === index + 1) }),
      h("span", { text: String(index + 1), "aria-hidden": "true" })));
    const element = h("form", { class: "rating-form", onsubmit: (event) => {
      event.preventDefault();
      const score = Number(element.elements.score.value);
      if (!score) return;
      const comment = element.elements.comment.value.trim();
      status.textContent = "Sending…";
      send(panel, { conversation, score, ...(comment ? { comment } : {}) }).then((rating) => {
        given = ticket.rating = { score: rating.score, changeable_until: rating.changeable_until };
        summary();
        panel.announce("Thank you for your rating.");
        panel.render();
      }).catch((error) => { status.textContent = `Could not send: ${error.message}`; });
    } },
    h("fieldset", { class: "scores" }, h("legend", { text: "How did we do?" }), ...choices),
    h("label", { for: "hw-rating-comment", text: "Anything to add? (optional)" }),
    h("textarea", { id: "hw-rating-comment", name: "comment", rows: "2", maxlength: "1000" }),
    h("button", { type: "submit", class: "secondary", text: given ? "Change my rating" : "Send my rating" }),
    status);
    box.replaceChildren(element);
  };
  if (given) summary(); else form();
  return box;
}
