// The panel's views: home (search and the visitor's requests), a new request, a
// conversation, and the frame around them. Each view is built once when shown; refresh()
// only refills its live slots, so typing, focus and the caret survive incoming messages.
// Views get the panel passed in and never import it.

import { h } from "./dom.js";
import { searchBox } from "./articles.js";

// one way to write a time, in the visitor's own locale and time zone: relative while recent
// ("2 min ago"), then the time of day, with the weekday or else the date when not today
const AGO = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });

export function when(iso, now = Date.now()) {
  const date = new Date(iso);
  const minutes = Math.round((now - date) / 6e4);
  if (minutes >= 0 && minutes < 60) return AGO.format(-minutes, "minute");
  const day = date.toDateString() !== new Date(now).toDateString() &&
    (Math.abs(now - date) < 5e8 ? { weekday: "short" } : { day: "numeric", month: "short" });
  return date.toLocaleString(undefined, { hour: "numeric", minute: "2-digit", ...day });
}

// the SLA promise in words; the server's clock decides, the widget only phrases it
export function promise(ticket, now = Date.now()) {
  if (!ticket || ["solved", "closed"].includes(ticket.status)) return "";
  const waiting = ticket.response_due !== undefined ? ticket.response_due
    : (ticket.first_response_at ? null : ticket.first_response_due);
  if (ticket.breached && waiting) return "We're late, and still on it.";
  if (!waiting) return "";
  const due = new Date(waiting);
  if (due.getTime() <= now) return "We're late, and still on it.";
  const verb = ticket.response_kind === "next_response" ? "get back to you" : "reply";
  return `We'll ${verb} by ${when(due, now)}`;
}

// the dialog: heading, close button, the view's body and a live region for announcements
export function dialog(panel) {
  panel.live = h("div", { class: "sr", "aria-live": "polite" });
  panel.title = h("h2", { id: "hw-title", text: "Help", tabindex: "-1" });
  // a pasted or dropped file goes to the composer on screen; its files are taken now: the
  // event's data is emptied once it ends
  const take = (event) => {
    const data = event.clipboardData || event.dataTransfer;
    if (data.types.includes("Files")) { event.preventDefault(); attach(panel, event.type, [...data.files]); }
  };
  panel.body = h("div", { class: "body", onpaste: take, ondragover: take, ondrop: take });
  const node = h("div", { class: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "hw-title", hidden: true,
    onkeydown: (event) => { if (event.key === "Escape") { event.stopPropagation(); panel.setOpen(false); } } },
  h("header", {}, panel.title, h("button", { type: "button", class: "icon", "aria-label": "Close help", text: "×",
    onclick: () => panel.setOpen(false) })),
  panel.body, panel.live);
  node.classList.toggle("left", panel.config.side === "left");
  return node;
}

// attachments: attach.js, loaded on first use or for a message with files
const attach = (...args) => import("./attach.js").then((m) => m.attach(...args));
const slot = (panel, name, tag = "div", props = {}) => (panel.slots[name] = h(tag, props));
const back = (panel, text) => h("button", { type: "button", class: "link", text, onclick: () => panel.show({ name: "home" }) });

// a view whose module loads when it is first shown (most visitors never open one): a holder
// now, the view when the module arrives; the module gets the panel, it never imports it
function later(panel, load) {
  const holder = h("div", { class: "view" });
  load().then((view) => { holder.replaceChildren(view); if (holder.isConnected) panel.focus(); })
    .catch(() => { holder.textContent = "Could not load. Check your connection."; });
  return holder;
}

export const views = {
  home: (panel) => h("div", { class: "view" },
    searchBox(panel),
    h("button", { type: "button", class: "primary", text: "Start a new request", onclick: () => panel.show({ name: "new" }) }),
    slot(panel, "status", "div", { role: "status" }),
    h("h3", { text: "Your requests" }),
    slot(panel, "list", "ul", { class: "tickets" }),
    slot(panel, "access")),
  new: newView,
  conversation: conversationView,
  article: (panel, view) => later(panel, () => import("./article.js").then((m) => m.articleView(panel, view.article))),
  access: (panel) => later(panel, () => import("./access.js").then((m) => m.accessView(panel))),
};

// refill the live slots of the view on screen
export function refresh(panel) {
  panel.title.textContent = panel.site ? panel.site.name : "Help";
  const { status, list, head, log, typing, access, mail, rating, choice } = panel.slots;
  if (status) status.replaceChildren(...statusLine(panel));
  if (choice) severityChoice(panel, choice);
  if (mail && panel.visitor) offerMail(panel, mail);
  if (rating) offerRating(panel, rating);
  const verified = Boolean(panel.visitor && panel.visitor.verified);
  // only verified visitors can grant access
  if (access && access.childElementCount !== Number(verified)) {
    access.replaceChildren(...(verified ? [h("button", { type: "button", class: "link", text: "Access and Security",
      onclick: () => panel.show({ name: "access" }) })] : []));
  }
  if (list) list.replaceChildren(...ticketRows(panel));
  if (head) head.replaceChildren(...ticketHead(panel));
  if (typing) {
    const who = panel.typing && panel.typing.conversation === panel.view.conversation && panel.typing.until > Date.now();
    typing.textContent = who ? `${panel.typing.name || "Support"} is typing…` : "";
  }
  if (log) {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.replaceChildren(...messageItems(panel));
    if (atBottom) log.scrollTop = log.scrollHeight;
  }
}

function statusLine(panel) {
  if (panel.link.online) return [];
  return [h("p", { class: "status", text: panel.link.failures > 2
    ? "Offline. Your messages are kept and will be sent when we reconnect." : "Connecting…" })];
}

function ticketRows(panel) {
  const open = (conversation) => () => panel.show({ name: "conversation", conversation });
  const pending = panel.outbox.items.filter((item) => item.conversation === `new:${item.client_msg_id}`).map((item) =>
    h("li", {}, h("button", { type: "button", class: "ticket", onclick: open(item.conversation) },
      h("span", { class: "ref", text: "New request" }), h("span", { class: "subject", text: item.body }),
      h("span", { class: "meta", text: item.failed ? "Not sent" : "Sending…" }))));
  const tickets = [...panel.conversations.values()].filter((c) => c.ticket)
    .sort((a, b) => b.ticket.created_at.localeCompare(a.ticket.created_at))
    .map((c) => {
      const last = c.messages[c.messages.length - 1];
      const unread = panel.unread(c);
      return h("li", {}, h("button", { type: "button", class: "ticket", onclick: open(c.id) },
        h("span", { class: "ref", text: c.ticket.reference }),
        h("span", { class: "subject", text: c.ticket.subject }),
        h("span", { class: "meta", text: c.ticket.status_label }),
        last ? h("span", { class: "last", text: last.body.replace(/[*`]/g, "") }) : null,
        unread ? h("span", { class: "unread", text: String(unread), "aria-label": `${unread} unread` }) : null));
    });
  const rows = [...pending, ...tickets];
  return rows.length ? rows : [h("li", { class: "empty", text: "No requests yet." })];
}

// a new request's extras: support's hours and speed, suggestions, the follow-up offer
const compose = () => import("./compose.js");

function newView(panel, view) {
  const of = view.followUp;
  const choice = slot(panel, "choice", "fieldset", { hidden: true });
  severityChoice(panel, choice);
  const describe = composerField(panel, "hw-new-body", () => form.requestSubmit());
  const asksContact = (panel.config.mode === "form" || panel.link.blocked) && !(panel.visitor && panel.visitor.verified);
  const contact = panel.contact || {};
  // support's hours and speed, and suggestions while writing, when they arrive (compose.js)
  const note = h("p", { class: "hint", hidden: true });
  const tips = h("div");
  compose().then((module) => {
    module.note(panel, note, when);
    tips.append(module.suggestions(panel, describe));
  }, () => {});
  const form = h("form", { class: "view", onsubmit: async (event) => {
    event.preventDefault();
    const body = form.elements.body.value;
    if (!body.trim()) return;
    const severity = form.elements.severity ? form.elements.severity.value : undefined;
    if (asksContact) {
      panel.contact = { name: form.elements.name.value.trim(), email: form.elements.email.value.trim() };
      panel.store.set("contact", panel.contact);
      panel.ready = panel.begin();
      await panel.ready;
    }
    const item = panel.enqueue(body, null, { severity, follow_up_of: of && of.number });
    panel.show({ name: "conversation", conversation: item.conversation });
  } },
  back(panel, "← Back"),
  h("h3", { text: of ? `Follow-up to ${of.reference}` : "New request" }),
  note,
  choice,
  asksContact ? h("p", { class: "hint", text: "Leave us a message; our answer will appear here when you come back." }) : null,
  ...(asksContact ? [
    h("label", { for: "hw-name", text: "Your name" }),
    h("input", { id: "hw-name", name: "name", autocomplete: "name", required: true, maxlength: "200",
      value: contact.name || "" }),
    h("label", { for: "hw-email", text: "Your email" }),
    h("input", { id: "hw-email", name: "email", type: "email", autocomplete: "email", required: true, maxlength: "254",
      value: contact.email || "" })] : []),
  h("label", { for: "hw-new-body", text: "Describe the problem" }),
  describe,
  tips,
  h("button", { type: "button", class: "link", text: "Attach files", onclick: () => attach(panel, "pick") }),
  h("button", { type: "submit", class: "primary", text: "Send" }),
  slot(panel, "status", "div", { role: "status" }));
  return form;
}

// the severities a visitor may propose, filled once the session names them (it may answer
// after the view opened); never refilled, so a choice made stays
function severityChoice(panel, fieldset) {
  const site = panel.site;
  if (!site || fieldset.childElementCount || site.visitor_proposes_severity === false || !(site.severities || []).length) return;
  const chosen = site.default_severity || "normal";
  fieldset.replaceChildren(h("legend", { text: "How much does it affect you?" }),
    ...site.severities.map((s) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "severity", value: s.key, checked: s.key === chosen }),
      h("span", {}, h("strong", { text: s.label }), h("span", { class: "hint", text: s.description })))));
  fieldset.hidden = false;
}

// a draft is kept per visitor and conversation until the server acknowledges it (panel.js)
function composerField(panel, id, submit) {
  const limit = (panel.site && panel.site.limits && panel.site.limits.max_body_chars) || 5000;
  const draft = panel.draftKey();
  const text = draft && panel.store.get(draft, "");
  return h("textarea", { id, name: "body", rows: "3", required: true, maxlength: String(limit),
    text: panel.outbox.items.some((item) => item.body === text) ? "" : text,
    onkeydown: (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
    },
    oninput: (event) => {
      // the key now: a new request's view names its conversation once acknowledged
      if (panel.draftKey()) panel.store.set(panel.draftKey(), event.target.value);
      const id = panel.view.conversation;
      if (!panel.link.online || !id || id.startsWith("new:") || Date.now() - panel.typingSent < 3000) return;
      panel.typingSent = Date.now();
      panel.link.send(JSON.stringify({ type: "typing", conversation: id }));
    } });
}

function conversationView(panel) {
  const form = slot(panel, "composer", "form", { class: "composer", onsubmit: (event) => {
    event.preventDefault();
    const body = form.elements.body.value;
    if (!body.trim()) return;
    form.elements.body.value = "";
    panel.enqueue(body, panel.view.conversation);
    panel.render();
  } });
  form.append(
  h("label", { for: "hw-reply", class: "sr", text: "Your message" }),
  composerField(panel, "hw-reply", () => form.requestSubmit()),
  h("button", { type: "button", class: "link", text: "Attach files", onclick: () => attach(panel, "pick") }),
  h("button", { type: "submit", class: "primary", text: "Send" }));
  // a closed ticket takes no more messages: a new one, linked to it, does (compose.js)
  const followUp = slot(panel, "followUp", "div", { class: "composer", hidden: true });
  return h("div", { class: "view conversation" },
    back(panel, "← All requests"),
    slot(panel, "head", "div", { class: "ticket-head" }),
    slot(panel, "status", "div", { role: "status" }),
    slot(panel, "log", "div", { class: "log", role: "log", "aria-label": "Messages", tabindex: "0" }),
    slot(panel, "typing", "p", { class: "typing" }),
    slot(panel, "rating"),
    form, followUp,
    slot(panel, "mail"));
}

// when the server mails: "Get replies by email" until the visitor's replies are mailed, then
// "Email me this conversation"; what they do is a module of its own (mail.js)
function offerMail(panel, slot) {
  const id = panel.view.conversation;
  const has = panel.visitor.mail_verified;
  const want = panel.site && panel.site.mail && id && !id.startsWith("new:") ? id + has : "";
  if (slot.dataset.for === want) return;
  slot.dataset.for = want;
  slot.replaceChildren(...(want ? [h("button", { type: "button", class: "link", text: has ? "Email me this conversation" : "Get replies by email",
    onclick: () => import("./mail.js").then((m) => slot.replaceChildren(m.mailView(panel, id, has))) })] : []));
}

// "How did we do?" once the request is solved, if the site asks (rating.js)
function offerRating(panel, slot) {
  const id = panel.view.conversation, c = panel.conversations.get(id), t = c && c.ticket;
  const want = panel.site && panel.site.ratings && t && /solved|closed/.test(t.status) ? id + (t.rating ? t.rating.score : "") : "";
  if (slot.dataset.for === want) return;
  slot.dataset.for = want;
  slot.replaceChildren();
  if (want) import("./rating.js").then((m) => slot.dataset.for === want && slot.replaceChildren(m.ratingView(panel, id, t)));
}

// number, status, severity and the promise on one line: the thread below keeps the space
function ticketHead(panel) {
  const conversation = panel.conversations.get(panel.view.conversation);
  const ticket = conversation && conversation.ticket;
  if (!ticket) return [h("h3", { text: "New request" })];
  const { composer, followUp } = panel.slots;
  composer.hidden = ticket.status === "closed";
  followUp.hidden = !composer.hidden;
  if (composer.hidden && !followUp.firstChild) compose().then((module) => module.followUp(panel, followUp, ticket));
  const facts = [ticket.status_label, ticket.stage_label, `${ticket.severity} severity`,
    ticket.specialists ? "Our specialists are looking into it" : "", promise(ticket)].filter(Boolean);
  return [h("h3", { text: ticket.reference }), h("p", { class: "meta", text: facts.join(" · ") })];
}

function messageItems(panel) {
  const id = panel.view.conversation;
  const conversation = panel.conversations.get(id);
  const stored = conversation ? conversation.messages.map((m) => messageItem(panel, m)) : [];
  const queued = panel.outbox.items.filter((item) => item.conversation === id).map((item) =>
    messageItem(panel, { ...item, author: { type: "visitor" } },
      item.failed ? `Not sent: ${item.failed}` : panel.link.online ? "Sending…" : "Not sent yet, will retry"));
  return [...stored, ...queued];
}

function messageItem(panel, message, state) {
  const type = message.author.type;
  const who = type === "visitor" ? "You" : type === "system" ? "Support" : (message.author.name || "Support");
  const initials = who.split(" ").map((word) => word[0]).join("").slice(0, 2).toUpperCase();
  // agents write Markdown: plain text until markdown.js is loaded, the subset after
  const rich = type === "agent" && (panel.markdown || loadMarkdown(panel));
  const node = h("div", { class: `message ${type}` },
    h("span", { class: "who" }, type === "agent" ? h("span", { class: "avatar", "aria-hidden": "true", text: initials }) : null, who),
    rich ? h("div", { class: "text md" }, rich.render(message.body)) : h("p", { class: "text", text: local(message) }),
    h("span", { class: "meta" }, h("time", { datetime: message.created_at, text: when(message.created_at) }),
      type === "visitor" ? h("span", { class: "state", text: state || "Sent" }) : null));
  if ((message.attachments || []).length) attach(panel, node, message.attachments);
  return node;
}

// the server writes its acknowledgement's promise in UTC ("by Thu 26 Nov 21:00 UTC"): the
// visitor reads it in their own time, like every other time in the widget (the year is the
// message's; a promise past New Year is still written right, as a date)
export function local(message, now) {
  return message.body.replace(/\w{3} (\d\d \w{3}) (\d\d:\d\d) UTC/, (text, day, time) => {
    const at = Date.parse(`${day} ${message.created_at.slice(0, 4)} ${time} UTC`);
    return at ? when(at, now) : text;
  });
}

// once: a module that failed to load (offline) stays failed in the browser until a reload
function loadMarkdown(panel) {
  panel.markdownLoad ||= import("./markdown.js").then((module) => {
    panel.markdown = module;
    panel.render();
  }, () => {});
}
