// "Get replies by email": the visitor types an address and we mail it a link; only once the
// link is followed are replies mailed there. Loaded when the visitor asks for it. The
// visitor token travels in a header, never in a URL; everything shown is set with textContent.

import { h } from "./dom.js";

export function mailForm(panel, conversation) {
  const status = h("p", { class: "status", role: "status" });
  const form = h("form", { class: "mail-form", onsubmit: async (event) => {
    event.preventDefault();
    const email = form.elements.email.value.trim();
    if (!email) return;
    status.textContent = "Sending…";
    try {
      await panel.ready;
      const response = await fetch(`${panel.config.server}/api/widget/v1/email-confirmations`, {
        method: "POST", mode: "cors", credentials: "omit",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${panel.token}` },
        body: JSON.stringify({ site: panel.config.site, conversation, email }),
      });
      const data = await response.json();
      if (!response.ok) throw new Error((data.error && data.error.message) || String(response.status));
      const done = `We sent a link to ${data.email}. Open it to get the replies to this request by email.`;
      form.replaceChildren(h("p", { class: "hint", text: done }));
      panel.announce(done);
    } catch (error) {
      status.textContent = `Could not send: ${error.message}`;
    }
  } },
  h("label", { for: "hw-mail", text: "Your email" }),
  h("input", { id: "hw-mail", name: "email", type: "email", autocomplete: "email", required: true, maxlength: "254" }),
  h("button", { type: "submit", class: "secondary", text: "Send me a link" }),
  status);
  return form;
}
