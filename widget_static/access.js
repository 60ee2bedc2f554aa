// "Access and Security": a verified visitor grants support access to their account for a
// while, sees the active grants and revokes any at once, and reads every grant, revoke,
// expiry and recorded use. Loaded only when the view opens. The visitor token travels in a
// header, never in a URL; everything shown is set with textContent.

import { h } from "./dom.js";

const WHEN = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const when = (iso) => WHEN.format(new Date(iso));
const WHAT = { granted: "Access granted", revoked: "Access revoked", expired: "Access ended", used: "Support used access" };

async function call(panel, path, body) {
  await panel.ready;
  const response = await fetch(`${panel.config.server}/api/widget/v1/access-grants${path}`, {
    method: body ? "POST" : "GET", mode: "cors", credentials: "omit",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${panel.token}` },
    body: body ? JSON.stringify({ site: panel.config.site, ...body }) : undefined,
  });
  const data = await response.json();
  if (!response.ok) throw new Error((data.error && data.error.message) || String(response.status));
  return data;
}

function grantItem(panel, grant, refresh) {
  const about = [grant.ticket ? `Ticket #${grant.ticket}` : "", grant.reason || ""].filter(Boolean).join(" · ");
  return h("li", { class: "grant" },
    h("strong", { text: `Support can access your account until ${when(grant.expires_at)}` }),
    about ? h("span", { class: "hint", text: about }) : null,
    h("button", { type: "button", class: "secondary", text: "Revoke", "aria-label": `Revoke access until ${when(grant.expires_at)}`,
      onclick: () => refresh(call(panel, `/${encodeURIComponent(grant.id)}/revoke`, {}), "Access revoked.") }));
}

function eventItem(event) {
  const who = event.actor.type === "system" ? "" : event.actor.name || (event.actor.type === "visitor" ? "You" : "Support");
  const text = [event.action, event.detail].filter(Boolean).join(": ");
  return h("li", {},
    h("span", { class: "meta", text: [when(event.created_at), WHAT[event.type] || event.type, who].filter(Boolean).join(" · ") }),
    text ? h("span", { class: "text", text }) : null);
}

function grantForm(panel, data, refresh) {
  const tickets = [...panel.conversations.values()].filter((c) => c.ticket).map((c) => c.ticket);
  const form = h("form", { class: "grant-form", onsubmit: (event) => {
    event.preventDefault();
    const ticket = form.elements.ticket.value;
    refresh(call(panel, "", { hours: Number(form.elements.hours.value), ticket: ticket ? Number(ticket) : null,
      reason: form.elements.reason.value }), "Access granted.");
  } },
  h("fieldset", {}, h("legend", { text: "Let support into your account for" }),
    ...data.choices.map((choice, index) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "hours", value: String(choice.hours), checked: index === 0 }),
      h("span", { text: choice.label })))),
  h("label", { for: "hw-grant-ticket", text: "About" }),
  h("select", { id: "hw-grant-ticket", name: "ticket" }, h("option", { value: "", text: "No particular request" }),
    ...tickets.map((t) => h("option", { value: String(t.number), text: `${t.reference} ${t.subject}` }))),
  h("label", { for: "hw-grant-reason", text: "Reason (optional)" }),
  h("input", { id: "hw-grant-reason", name: "reason", maxlength: "500" }),
  h("button", { type: "submit", class: "primary", text: "Grant access" }));
  return form;
}

export function accessView(panel) {
  const view = h("div", { class: "view access" },
    h("button", { type: "button", class: "link", text: "← Back", onclick: () => panel.show({ name: "home" }) }),
    h("h3", { text: "Access and Security" }),
    h("p", { class: "hint", text: "Support can only look into your account while you allow it. You can revoke access at any time." }));
  const content = h("div", { class: "view" }, h("p", { class: "status", text: "Loading…" }));
  const status = h("p", { class: "status", role: "status" });
  view.append(status, content);
  const draw = (data) => {
    content.replaceChildren(
      h("h4", { text: "Active access" }),
      h("ul", { class: "grants" }, ...(data.grants.length ? data.grants.map((g) => grantItem(panel, g, refresh))
        : [h("li", { class: "empty", text: "Support has no access to your account." })])),
      data.choices.length ? grantForm(panel, data, refresh) : h("p", { class: "hint", text: "This site does not take access grants." }),
      h("h4", { text: "History" }),
      h("ul", { class: "history" }, ...(data.events.length ? data.events.map(eventItem) : [h("li", { class: "empty", text: "Nothing yet." })])));
  };
  const refresh = (pending, done) => pending.then((data) => {
    draw(data);
    status.textContent = done || "";
    if (done) panel.announce(done);
  }).catch((error) => { status.textContent = `Could not update: ${error.message}`; });
  refresh(call(panel, `?site=${encodeURIComponent(panel.config.site)}`));
  return view;
}
