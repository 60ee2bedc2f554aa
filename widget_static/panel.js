// widget-server help panel: views, the JS API, and exactly-once delivery (an outbox in
// localStorage, resend with the same client_msg_id, resume by seq). Loaded by widget.js.
// All DOM is built with createElement/textContent; nothing from the network becomes markup.

import { articleView, searchBox, sendEvent, suggestions } from "./articles.js";

const PERMANENT = new Set(["body_too_long", "body_empty", "invalid_severity",
  "conversation_closed", "conversation_not_found", "invalid_frame"]);
const KEEP_MESSAGES = 200;

// -- small helpers ---------------------------------------------------------------------------

export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
  : ([1e7] + -1e3 + -4e3 + -8e3 + -1e11).replace(/[018]/g, (c) =>
    (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16)));

const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const utcDue = new Intl.DateTimeFormat("en-GB", { weekday: "short", hour: "2-digit",
  minute: "2-digit", hour12: false, timeZone: "UTC" });

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
  return `We'll ${verb} by ${utcDue.format(due).replace(",", "")} UTC`;
}

class Storage {
  constructor(site) { this.prefix = `helpwidget:${site}:`; }
  get(key, fallback) {
    try { const raw = localStorage.getItem(this.prefix + key); return raw ? JSON.parse(raw) : fallback; }
    catch { return fallback; }
  }
  set(key, value) { try { localStorage.setItem(this.prefix + key, JSON.stringify(value)); } catch { /* full or blocked */ } }
  clear() {
    try {
      for (const key of Object.keys(localStorage)) if (key.startsWith(this.prefix)) localStorage.removeItem(key);
    } catch { /* blocked */ }
  }
}

// -- the panel -------------------------------------------------------------------------------

class Panel {
  constructor(core) {
    Object.assign(this, core);
    this.store = new Storage(this.config.site);
    this.conversations = new Map(); // id -> {id, ticket, messages: [], readSeq}
    this.outbox = this.store.get("outbox", []);
    this.user = this.store.get("user", null);
    this.contact = this.store.get("contact", null); // name and email given in the form view
    this.token = this.store.get("token", null);
    this.isOpen = false;
    this.view = { name: "home" };
    this.ws = null;
    this.attempts = 0;
    this.failures = 0;
    this.typingSent = 0;
    this.sentOn = new Map(); // client_msg_id -> the socket it was last sent on
    for (const ticket of this.store.get("tickets", [])) this.conversation(ticket.conversation).ticket = ticket;
    this.build();
    window.addEventListener("online", () => this.wake());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") { this.wake(); this.markRead(); }
    });
    this.ready = this.begin();
  }

  // -- the JS API
  call(command, argument) {
    const actions = {
      open: () => this.setOpen(true),
      close: () => this.setOpen(false),
      toggle: () => this.setOpen(!this.isOpen),
      identify: () => this.identify(argument),
      logout: () => this.logout(),
    };
    if (actions[command]) actions[command]();
    else this.emit("error", { code: "unknown_command", message: `unknown command ${command}` });
  }

  async identify(user) {
    if (!user || user.id === undefined) return;
    this.user = { id: String(user.id), name: user.name, email: user.email, hash: user.hash };
    this.store.set("user", this.user);
    await this.ready;
    this.ready = this.begin();
  }

  async logout() {
    this.store.clear();
    this.user = null;
    this.contact = null;
    this.token = null;
    this.outbox = [];
    this.conversations.clear();
    this.disconnect();
    this.show({ name: "home" });
    this.ready = this.begin();
  }

  // -- session and socket
  async begin() {
    try {
      const response = await fetch(`${this.config.server}/api/widget/v1/session`, {
        method: "POST", mode: "cors", credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ site: this.config.site, token: this.token, user: this.user || this.contact }),
      });
      const data = await response.json();
      if (response.status === 429) this.retryAfter = Number(response.headers.get("Retry-After")) || 0;
      if (response.status === 403 && data.error && data.error.code === "invalid_identity" && this.user) {
        this.emit("error", data.error); // the host's hash is wrong: retrying cannot help
        this.user = null;
        this.store.set("user", null);
        this.ready = this.begin();
        return;
      }
      if (!response.ok) throw new Error(data.error ? data.error.message : response.status);
      if (this.visitor && this.visitor.id !== data.visitor.id) this.conversations.clear();
      const known = this.visitor ? [this.visitor.id, this.visitor.name, this.visitor.email].join() : "";
      if (known !== [data.visitor.id, data.visitor.name, data.visitor.email].join()) this.disconnect();
      this.token = data.token;
      this.visitor = data.visitor;
      this.site = data.site;
      this.store.set("token", this.token);
      for (const ticket of data.tickets) this.conversation(ticket.conversation).ticket = ticket;
      this.render();
      if (this.conversations.size || this.outbox.length || this.isOpen) this.connect();
    } catch (error) {
      this.emit("error", { code: "session_failed", message: String(error.message || error) });
      this.failures += 1;
      this.render();
      this.retry(() => { this.ready = this.begin(); });
    }
  }

  connect() {
    if (!this.token || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    const ws = new WebSocket(this.config.server.replace(/^http/, "ws") + "/ws/widget");
    this.ws = ws;
    ws.addEventListener("open", () => {
      const resume = {};
      for (const conversation of this.conversations.values()) resume[conversation.id] = this.lastSeq(conversation);
      ws.send(JSON.stringify({ type: "hello", site: this.config.site, token: this.token, resume,
        page: (location.origin + location.pathname).slice(0, 2000) }));
      // the server closes sockets silent for limits.idle_timeout seconds (1001); ping well before
      const idle = this.site && this.site.limits ? this.site.limits.idle_timeout : 0;
      if (idle > 0) ws.heartbeat = setInterval(() => ws.send('{"type":"ping"}'), Math.min(60, idle / 3) * 1000);
    });
    ws.addEventListener("message", (event) => {
      this.lastFrame = Date.now();
      try { this.receive(JSON.parse(event.data)); } catch (error) { this.emit("error", { code: "bad_frame", message: String(error) }); }
    });
    ws.addEventListener("close", (event) => {
      clearInterval(ws.heartbeat);
      if (this.ws !== ws) return;
      this.ws = null;
      this.isReady = false;
      this.failures += 1;
      this.render();
      if (event.code === 1008 && this.refused) { this.refused = false; this.token = null; this.ready = this.begin(); return; }
      this.retry(() => { this.connect(); if (this.socketBlocked) this.flushHttp(); });
    });
  }

  disconnect() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
  }

  retry(again) {
    clearTimeout(this.retryTimer);
    const delay = Math.max(Math.min(30000, 500 * 2 ** this.attempts) * (0.5 + Math.random()), (this.retryAfter || 0) * 1000);
    this.retryAfter = 0;
    this.attempts = Math.min(this.attempts + 1, 10);
    this.retryTimer = setTimeout(again, delay);
  }

  wake() {
    // after sleep or a network change the socket may be dead without knowing it: probe it
    if (!this.ws) { this.attempts = 0; clearTimeout(this.retryTimer); if (this.token) this.connect(); return; }
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const asked = Date.now();
    this.ws.send(JSON.stringify({ type: "ping" }));
    setTimeout(() => { if (this.ws && this.lastFrame < asked) this.ws.close(); }, 4000);
  }

  // websockets can be blocked (proxies, firewalls) while plain HTTPS works
  get socketBlocked() { return !this.online && this.failures > 2; }

  get online() { return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN && this.isReady); }

  // -- frames
  receive(frame) {
    const handlers = {
      ready: () => this.onReady(frame),
      ack: () => this.onAck(frame),
      message: () => this.onMessage(frame),
      ticket: () => this.onTicket(frame),
      typing: () => this.onTyping(frame),
      error: () => this.onError(frame),
    };
    if (handlers[frame.type]) handlers[frame.type]();
  }

  onReady(frame) {
    this.isReady = true;
    this.attempts = 0;
    this.failures = 0;
    for (const item of frame.conversations) {
      const conversation = this.conversation(item.id);
      if (item.ticket) conversation.ticket = item.ticket;
    }
    this.emit("ready", { visitor: this.visitor });
    this.flush();
    this.render();
  }

  onAck(frame) {
    const item = this.outbox.find((entry) => entry.client_msg_id === frame.client_msg_id);
    const conversation = this.conversation(frame.conversation);
    if (frame.ticket) conversation.ticket = frame.ticket;
    if (item) {
      this.settle(item, frame.conversation);
      this.add(conversation, { seq: frame.seq, id: frame.message_id, body: item.body, created_at: frame.created_at,
        client_msg_id: item.client_msg_id, author: { type: "visitor", name: null } });
    }
    if (frame.ticket && item && item.conversation.startsWith("new:")) {
      this.emit("ticket", frame.ticket);
      sendEvent(this, "request"); // for the deflection rate: no request followed a search
    }
    this.flush();
    this.render();
  }

  onMessage(frame) {
    const conversation = this.conversation(frame.conversation);
    const item = frame.client_msg_id && this.outbox.find((entry) => entry.client_msg_id === frame.client_msg_id);
    if (item) this.settle(item, frame.conversation);
    if (frame.seq > this.lastSeq(conversation) + 1 && this.ws) { this.ws.close(); return; } // a gap: resume
    if (!this.add(conversation, frame)) return;
    if (frame.author.type !== "visitor") {
      this.emit("message", frame);
      this.announce(`${frame.author.name || "Support"}: ${frame.body}`);
      this.typing = null;
    }
    this.markRead();
    this.render();
  }

  onTicket(frame) {
    this.conversation(frame.conversation).ticket = frame.ticket;
    this.emit("ticket", frame.ticket);
    this.render();
  }

  onTyping(frame) {
    this.typing = { conversation: frame.conversation, name: frame.author.name, until: Date.now() + 5000 };
    this.render();
    setTimeout(() => this.render(), 5100);
  }

  onError(frame) {
    this.emit("error", { code: frame.code, message: frame.message });
    if (["invalid_token", "token_expired"].includes(frame.code)) this.refused = true;
    const item = frame.ref && this.outbox.find((entry) => entry.client_msg_id === frame.ref);
    if (frame.code === "rate_limited") {  // kept in the outbox; sent again when the server says
      if (!item) { this.retryAfter = frame.retry_after; return; } // the socket closes next
      this.sentOn.delete(item.client_msg_id);
      this.holdUntil = Date.now() + frame.retry_after * 1000; // hold them all: keeps the order
      clearTimeout(this.limitTimer);
      this.limitTimer = setTimeout(() => this.flush(), frame.retry_after * 1000 + 50);
      return;
    }
    if (item && PERMANENT.has(frame.code)) {
      item.failed = frame.message;
      this.saveOutbox();
      this.render();
      this.flush();
    }
  }

  // -- state
  conversation(id) {
    let conversation = this.conversations.get(id);
    if (!conversation) {
      conversation = { id, ticket: null, messages: this.store.get(`messages:${id}`, []),
        readSeq: this.store.get(`read:${id}`, 0) };
      this.conversations.set(id, conversation);
    }
    return conversation;
  }

  // the end of the gap-free run of messages we hold: an ack that arrived over HTTP may be
  // newer than replies we never saw, and resuming must not skip those
  lastSeq(conversation) {
    const messages = conversation.messages;
    if (!messages.length) return 0;
    let last = messages[0].seq;
    if (last !== 1 && messages.length < KEEP_MESSAGES) return 0;
    for (const message of messages) {
      if (message.seq > last + 1) break;
      last = message.seq;
    }
    return last;
  }

  add(conversation, message) {
    const messages = conversation.messages;
    if (messages.some((known) => known.seq === message.seq)) return false;
    const { seq, id, body, created_at, author, client_msg_id } = message;
    messages.push({ seq, id, body, created_at, author, client_msg_id });
    messages.sort((a, b) => a.seq - b.seq);
    this.store.set(`messages:${conversation.id}`, messages.slice(-KEEP_MESSAGES));
    return true;
  }

  settle(item, conversationId) {
    this.outbox = this.outbox.filter((entry) => entry !== item);
    for (const entry of this.outbox) if (entry.conversation === item.conversation && entry.conversation.startsWith("new:")) entry.conversation = conversationId;
    if (this.view.conversation === item.conversation) this.view = { name: "conversation", conversation: conversationId };
    this.saveOutbox();
  }

  saveOutbox() { this.store.set("outbox", this.outbox); }

  // a follow-up written before its new request was acknowledged waits for the request's id;
  // if that request failed for good, the follow-up cannot be delivered either
  waitsForRoot(item) {
    if (!item.conversation.startsWith("new:") || item.conversation === `new:${item.client_msg_id}`) return false;
    const root = this.outbox.find((entry) => `new:${entry.client_msg_id}` === item.conversation);
    if (!root || root.failed) {
      item.failed = "its request could not be sent";
      this.saveOutbox();
    }
    return true;
  }

  unread(conversation) {
    return conversation.messages.filter((m) => m.seq > conversation.readSeq && m.author.type === "agent").length;
  }

  markRead() {
    const conversation = this.view.name === "conversation" && this.conversations.get(this.view.conversation);
    if (!conversation || !this.isOpen || document.visibilityState === "hidden") return;
    const seq = this.lastSeq(conversation);
    if (seq <= conversation.readSeq) return;
    conversation.readSeq = seq;
    this.store.set(`read:${conversation.id}`, seq);
    if (this.online) this.ws.send(JSON.stringify({ type: "read", conversation: conversation.id, seq }));
  }

  // -- sending
  enqueue(body, conversation, extra = {}) {
    const client_msg_id = uuid();
    const item = { client_msg_id, conversation: conversation || `new:${client_msg_id}`, body,
      created_at: new Date().toISOString(), ...extra };
    this.outbox.push(item);
    this.saveOutbox();
    this.connect();
    this.flush();
    if (this.socketBlocked) this.flushHttp();
    return item;
  }

  async flushHttp() {
    if (this.httpBusy || !this.token || this.online) return;
    this.httpBusy = true;
    try {
      for (const item of [...this.outbox]) {
        if (item.failed) continue;
        if (this.waitsForRoot(item)) continue;
        const conversation = item.conversation.startsWith("new:") ? null : item.conversation;
        const response = await fetch(`${this.config.server}/api/widget/v1/messages`, {
          method: "POST", mode: "cors", credentials: "omit", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ site: this.config.site, token: this.token, conversation,
            client_msg_id: item.client_msg_id, body: item.body, severity: item.severity, subject: item.subject }),
        });
        const data = await response.json();
        if (!response.ok) {
          if (!PERMANENT.has(data.error && data.error.code)) break;
          item.failed = data.error.message;
          this.saveOutbox();
          continue;
        }
        this.onAck(data.ack);
        for (const message of data.messages) if (message.seq !== data.ack.seq) this.onMessage(message);
      }
    } catch { /* still offline: the outbox keeps everything */ } finally {
      this.httpBusy = false;
      this.render();
    }
  }

  flush() {
    if (!this.online || this.holdUntil > Date.now()) return;
    for (const item of this.outbox) {
      if (item.failed) continue;
      if (this.waitsForRoot(item)) continue;
      if (this.sentOn.get(item.client_msg_id) === this.ws) continue;
      this.sentOn.set(item.client_msg_id, this.ws);
      const conversation = item.conversation.startsWith("new:") ? null : item.conversation;
      const frame = JSON.stringify({ type: "send", conversation, client_msg_id: item.client_msg_id,
        body: item.body, severity: item.severity, subject: item.subject });
      const limits = (this.site && this.site.limits) || { max_frame_bytes: 16384 };
      if (new TextEncoder().encode(frame).length > limits.max_frame_bytes) {
        item.failed = "this message is too long; please shorten it"; // the server would close on it
        this.saveOutbox();
        this.render();
        continue;
      }
      this.ws.send(frame);
    }
  }

  // -- DOM: each view is built once when shown; render() only refills its live slots, so
  // typing, focus and the caret survive incoming messages.
  build() {
    this.live = h("div", { class: "sr", "aria-live": "polite" });
    this.title = h("h2", { id: "hw-title", text: "Help" });
    this.body = h("div", { class: "body" });
    this.panel = h("div", { class: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "hw-title", hidden: true,
      onkeydown: (event) => { if (event.key === "Escape") { event.stopPropagation(); this.setOpen(false); } } },
    h("header", {}, this.title, h("button", { type: "button", class: "icon", "aria-label": "Close help", text: "×",
      onclick: () => this.setOpen(false) })),
    this.body, this.live);
    this.panel.classList.toggle("left", this.config.side === "left");
    this.root.append(this.panel);
  }

  setOpen(open) {
    if (open === this.isOpen) return;
    this.isOpen = open;
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", String(open));
    this.emit(open ? "open" : "close", {});
    if (open) {
      this.connect();
      this.show(this.view);
    } else {
      this.launcher.focus();
    }
  }

  show(view) {
    this.view = view;
    this.slots = {};
    const builders = { home: () => this.homeView(), new: () => this.newView(), conversation: () => this.conversationView(),
      article: () => articleView(this, view.article), access: () => this.accessView() };
    this.body.replaceChildren(builders[view.name]());
    this.render();
    this.markRead();
    const target = this.body.querySelector({ home: "input[type=search]", article: "button" }[view.name] || "textarea");
    if (target) target.focus();
  }

  slot(name, tag = "div", props = {}) {
    this.slots[name] = h(tag, props);
    return this.slots[name];
  }

  announce(text) {
    this.live.textContent = "";
    setTimeout(() => { this.live.textContent = text; }, 50);
  }

  saveTickets() {
    const tickets = [...this.conversations.values()].filter((c) => c.ticket)
      .map((c) => ({ ...c.ticket, conversation: c.id }));
    this.store.set("tickets", tickets);
  }

  render() {
    this.saveTickets();
    const total = [...this.conversations.values()].reduce((sum, c) => sum + this.unread(c), 0);
    if (total !== this.lastUnread) { this.lastUnread = total; this.emit("unread", { count: total }); }
    this.badge.hidden = total === 0;
    this.badge.textContent = String(total);
    this.launcher.setAttribute("aria-label", total ? `Help, ${total} unread` : "Help");
    if (!this.isOpen || !this.slots) return;
    this.title.textContent = this.site ? this.site.name : "Help";
    const { status, list, head, log, typing, access } = this.slots;
    if (status) status.replaceChildren(...this.statusLine());
    const verified = Boolean(this.visitor && this.visitor.verified);
    if (access && access.childElementCount !== Number(verified)) {  // only verified visitors can grant access
      access.replaceChildren(...(verified ? [h("button", { type: "button", class: "link", text: "Access and Security",
        onclick: () => this.show({ name: "access" }) })] : []));
    }
    if (list) list.replaceChildren(...this.ticketRows());
    if (head) head.replaceChildren(...this.ticketHead());
    if (typing) {
      const who = this.typing && this.typing.conversation === this.view.conversation && this.typing.until > Date.now();
      typing.textContent = who ? `${this.typing.name || "Support"} is typing…` : "";
    }
    if (log) {
      const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      log.replaceChildren(...this.messageItems());
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
  }

  statusLine() {
    if (this.online) return [];
    return [h("p", { class: "status", text: this.failures > 2
      ? "Offline. Your messages are kept and will be sent when we reconnect." : "Connecting…" })];
  }

  homeView() {
    return h("div", { class: "view" },
      searchBox(this),
      h("button", { type: "button", class: "primary", text: "Start a new request", onclick: () => this.show({ name: "new" }) }),
      this.slot("status", "div", { role: "status" }),
      h("h3", { text: "Your requests" }),
      this.slot("list", "ul", { class: "tickets" }),
      this.slot("access"));
  }

  accessView() {
    const holder = h("div", { class: "view" });
    import("./access.js").then(({ accessView }) => holder.replaceChildren(accessView(this)))
      .catch(() => { holder.textContent = "Could not load. Check your connection."; });
    return holder;
  }

  ticketRows() {
    const open = (conversation) => () => this.show({ name: "conversation", conversation });
    const pending = this.outbox.filter((item) => item.conversation === `new:${item.client_msg_id}`).map((item) =>
      h("li", {}, h("button", { type: "button", class: "ticket", onclick: open(item.conversation) },
        h("span", { class: "ref", text: "New request" }), h("span", { class: "subject", text: item.body }),
        h("span", { class: "meta", text: item.failed ? "Not sent" : "Sending…" }))));
    const tickets = [...this.conversations.values()].filter((c) => c.ticket)
      .sort((a, b) => b.ticket.created_at.localeCompare(a.ticket.created_at))
      .map((c) => {
        const last = c.messages[c.messages.length - 1];
        const unread = this.unread(c);
        return h("li", {}, h("button", { type: "button", class: "ticket", onclick: open(c.id) },
          h("span", { class: "ref", text: c.ticket.reference }),
          h("span", { class: "subject", text: c.ticket.subject }),
          h("span", { class: "meta", text: c.ticket.status_label }),
          last ? h("span", { class: "last", text: last.body }) : null,
          unread ? h("span", { class: "unread", text: String(unread), "aria-label": `${unread} unread` }) : null));
      });
    const rows = [...pending, ...tickets];
    return rows.length ? rows : [h("li", { class: "empty", text: "No requests yet." })];
  }

  newView() {
    const proposes = !this.site || this.site.visitor_proposes_severity !== false;
    const severities = (proposes && this.site && this.site.severities) || [];
    const chosen = (this.site && this.site.default_severity) || "normal";
    const describe = this.composerField("hw-new-body", () => form.requestSubmit());
    const asksContact = (this.config.mode === "form" || this.socketBlocked) && !(this.visitor && this.visitor.verified);
    const form = h("form", { class: "view", onsubmit: async (event) => {
      event.preventDefault();
      const body = form.elements.body.value;
      if (!body.trim()) return;
      const severity = form.elements.severity ? form.elements.severity.value : undefined;
      if (asksContact) {
        this.contact = { name: form.elements.name.value.trim(), email: form.elements.email.value.trim() };
        this.store.set("contact", this.contact);
        this.ready = this.begin();
        await this.ready;
      }
      const item = this.enqueue(body, null, { severity });
      this.show({ name: "conversation", conversation: item.conversation });
    } },
    h("button", { type: "button", class: "link", text: "← Back", onclick: () => this.show({ name: "home" }) }),
    h("h3", { text: "New request" }),
    severities.length ? h("fieldset", {}, h("legend", { text: "How much does it affect you?" }),
      ...severities.map((s) => h("label", { class: "choice" },
        h("input", { type: "radio", name: "severity", value: s.key, checked: s.key === chosen }),
        h("span", {}, h("strong", { text: s.label }), h("span", { class: "hint", text: s.description }))))) : null,
    asksContact ? h("p", { class: "hint", text: "Leave us a message; our answer will appear here when you come back." }) : null,
    ...(asksContact ? [
      h("label", { for: "hw-name", text: "Your name" }),
      h("input", { id: "hw-name", name: "name", autocomplete: "name", required: true, maxlength: "200",
        value: (this.contact && this.contact.name) || "" }),
      h("label", { for: "hw-email", text: "Your email" }),
      h("input", { id: "hw-email", name: "email", type: "email", autocomplete: "email", required: true, maxlength: "254",
        value: (this.contact && this.contact.email) || "" })] : []),
    h("label", { for: "hw-new-body", text: "Describe the problem" }),
    describe,
    suggestions(this, describe),
    h("button", { type: "submit", class: "primary", text: "Send" }),
    this.slot("status", "div", { role: "status" }));
    return form;
  }

  composerField(id, submit) {
    const limit = (this.site && this.site.limits && this.site.limits.max_body_chars) || 5000;
    return h("textarea", { id, name: "body", rows: "3", required: true, maxlength: String(limit),
      onkeydown: (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
      },
      oninput: () => {
        const id = this.view.conversation;
        if (!this.online || !id || id.startsWith("new:") || Date.now() - this.typingSent < 3000) return;
        this.typingSent = Date.now();
        this.ws.send(JSON.stringify({ type: "typing", conversation: id }));
      } });
  }

  conversationView() {
    const form = h("form", { class: "composer", onsubmit: (event) => {
      event.preventDefault();
      const body = form.elements.body.value;
      if (!body.trim()) return;
      form.elements.body.value = "";
      this.enqueue(body, this.view.conversation);
      this.render();
    } },
    h("label", { for: "hw-reply", class: "sr", text: "Your message" }),
    this.composerField("hw-reply", () => form.requestSubmit()),
    h("button", { type: "submit", class: "primary", text: "Send" }));
    return h("div", { class: "view conversation" },
      h("button", { type: "button", class: "link", text: "← All requests", onclick: () => this.show({ name: "home" }) }),
      this.slot("head", "div", { class: "ticket-head" }),
      this.slot("status", "div", { role: "status" }),
      this.slot("log", "div", { class: "log", role: "log", "aria-label": "Messages" }),
      this.slot("typing", "p", { class: "typing" }),
      form);
  }

  ticketHead() {
    const conversation = this.conversations.get(this.view.conversation);
    const ticket = conversation && conversation.ticket;
    if (!ticket) return [h("h3", { text: "New request" })];
    const facts = [ticket.status_label, ticket.stage_label, `${ticket.severity} severity`,
      ticket.specialists ? "Our specialists are looking into it" : ""].filter(Boolean);
    return [h("h3", { text: `${ticket.reference} ${ticket.subject}` }), h("p", { class: "meta", text: facts.join(" · ") }),
      promise(ticket) ? h("p", { class: "promise", text: promise(ticket) }) : null].filter(Boolean);
  }

  messageItems() {
    const id = this.view.conversation;
    const conversation = this.conversations.get(id);
    const stored = conversation ? conversation.messages.map((m) => this.messageItem(m)) : [];
    const queued = this.outbox.filter((item) => item.conversation === id).map((item) =>
      this.messageItem({ author: { type: "visitor" }, body: item.body, created_at: item.created_at },
        item.failed ? `Not sent: ${item.failed}` : this.online ? "Sending…" : "Not sent yet, will retry"));
    return [...stored, ...queued];
  }

  messageItem(message, state) {
    const mine = message.author.type === "visitor";
    const who = mine ? "You" : message.author.type === "system" ? "Support" : (message.author.name || "Support");
    return h("div", { class: `message ${message.author.type}` },
      h("span", { class: "who", text: who }),
      h("p", { class: "text", text: message.body }),
      h("span", { class: "meta" }, h("time", { datetime: message.created_at, text: clock(message.created_at) }),
        mine ? h("span", { class: "state", text: state || "Sent" }) : null));
  }
}

export function mount(core, css) {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  core.root.adoptedStyleSheets = [...core.root.adoptedStyleSheets, sheet];
  const panel = new Panel(core);
  return { call: (command, ...args) => panel.call(command, ...args), panel };
}
