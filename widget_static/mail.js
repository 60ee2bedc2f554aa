// Mail in the widget, loaded when the visitor asks for it. "Get replies by email": the
// visitor types an address and we mail it a link; only once the link is followed are
// replies mailed there. "Email me this conversation": a transcript to the verified address.
// The visitor token travels in a header, never in a URL; everything shown is textContent.

import { h } from "./dom.js";

async function post(panel, path, body) {
  await panel.ready;
  const response = await fetch(`${panel.config.server}/api/widget/v1/${path}`, {
    method: "POST", mode: "cors", credentials: "omit",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${panel.token}` },
    body: JSON.stringify({ site: panel.config.site, ...body }),
  });
  const data = await response.json();
  if (!response.ok) throw new Error((data.error && data.error.message) || String(response.status));
  return data;
}

// the view that replaces the offer: a form for an address, or the transcript being sent
export function mailView(panel, conversation, verified) {
  const status = h("p", { class: "status", role: "status", text: "Sending…" });
  const view = h("div", { class: "mail" }, status);
  const run = (pending, done) => pending.then((data) => {
    view.replaceChildren(h("p", { class: "hint", text: done(data) }));
    panel.announce(done(data));
  }).catch((error) => { status.textContent = `Could not send: ${error.message}`; });
  if (verified) {
    run(post(panel, "transcripts", { conversation }), () => "We emailed you this conversation.");
    return view;
  }
  status.textContent = "";
  const form = h("form", { class: "mail-form", onsubmit: (event) => {
    event.preventDefault();
    const email = form.elements.email.value.trim();
    if (!email) return;
    status.textContent = "Sending…";
    run(post(panel, "email-confirmations", { conversation, email }),
      (data) => `We sent a link to ${data.email}. Open it to get the replies to this request by email.`);
  } },
  h("label", { for: "hw-mail", text: "Your email" }),
  h("input", { id: "hw-mail", name: "email", type: "email", autocomplete: "email", required: true, maxlength: "254",
    value: (panel.contact && panel.contact.email) || panel.visitor.email || "" }),
  h("button", { type: "submit", class: "secondary", text: "Send me a link" }));
  view.prepend(form);
  setTimeout(() => form.elements.email.focus());
  return view;
}
