// widget-server help panel, loaded by widget.js: the JS API, the session, and what the
// server's frames do to the visitor's conversations. The outbox (outbox.js), the socket
// (connection.js) and the views (views.js) are modules of their own; none imports this one.

import { sendEvent } from "./articles.js";
import { Connection } from "./connection.js";
import { Outbox, PERMANENT, isNew } from "./outbox.js";
import { dialog, local, refresh, views } from "./views.js";

const KEEP_MESSAGES = 200;

// localStorage under helpwidget:<site>:, as JSON; a full or blocked storage loses nothing but persistence
class Storage {
  constructor(site) { this.prefix = `helpwidget:${site}:`; }
  get(key, fallback) {
    try { const raw = localStorage.getItem(this.prefix + key); return raw ? JSON.parse(raw) : fallback; }
    catch { return fallback; }
  }
  set(key, value) { try { localStorage.setItem(this.prefix + key, JSON.stringify(value)); } catch { /* full or blocked */ } }
  drop(key) { try { localStorage.removeItem(this.prefix + key); } catch { /* blocked */ } }
  clear() {
    try {
      for (const key of Object.keys(localStorage)) if (key.startsWith(this.prefix)) localStorage.removeItem(key);
    } catch { /* blocked */ }
  }
}

class Panel {
  constructor(core) {
    Object.assign(this, core);
    this.store = new Storage(this.config.site);
    // id -> {id, ticket, messages: [], readSeq}
    this.conversations = new Map();
    this.outbox = new Outbox(this.store);
    this.user = this.store.get("user", null);
    // name and email given in the form view
    this.contact = this.store.get("contact", null);
    this.token = this.store.get("token", null);
    this.isOpen = false;
    this.view = { name: "home" };
    this.typingSent = 0;
    this.link = new Connection(this.config.server, {
      hello: () => {
        const resume = {};
        for (const conversation of this.conversations.values()) resume[conversation.id] = this.lastSeq(conversation);
        return { type: "hello", site: this.config.site, token: this.token, resume,
          page: (location.origin + location.pathname).slice(0, 2000) };
      },
      idle: () => (this.site && this.site.limits ? this.site.limits.idle_timeout : 0),
      frame: (text) => {
        try { this.receive(JSON.parse(text)); } catch (error) { this.emit("error", { code: "bad_frame", message: String(error) }); }
      },
      closed: (event) => {
        this.render();
        if (event.code === 1008 && this.refused) { this.refused = false; this.token = null; this.ready = this.begin(); return; }
        this.link.retry(() => { this.connect(); if (this.link.blocked) this.flushHttp(); });
      },
    });
    for (const ticket of this.store.get("tickets", [])) this.conversation(ticket.conversation).ticket = ticket;
    this.panel = dialog(this);
    this.root.append(this.panel);
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
    this.user = { id: String(user.id), name: user.name, email: user.email, hash: user.hash,
                  email_hash: user.email_hash };
    this.store.set("user", this.user);
    await this.ready;
    this.ready = this.begin();
  }

  async logout() {
    this.store.clear();
    this.user = null;
    this.contact = null;
    this.token = null;
    this.outbox = new Outbox(this.store);
    this.conversations.clear();
    this.link.close();
    this.show({ name: "home" });
    this.ready = this.begin();
  }

  // -- the session and the socket
  async begin() {
    try {
      const response = await fetch(`${this.config.server}/api/widget/v1/session`, {
        method: "POST", mode: "cors", credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ site: this.config.site, token: this.token, user: this.user || this.contact }),
      });
      const data = await response.json();
      if (response.status === 429) this.link.retryAfter = Number(response.headers.get("Retry-After")) || 0;
      if (response.status === 403 && data.error && data.error.code === "invalid_identity" && this.user) {
        // the host's hash is wrong: retrying cannot help
        this.emit("error", data.error);
        this.user = null;
        this.store.set("user", null);
        this.ready = this.begin();
        return;
      }
      if (!response.ok) throw new Error(data.error ? data.error.message : response.status);
      if (this.visitor && this.visitor.id !== data.visitor.id) this.conversations.clear();
      const known = this.visitor ? [this.visitor.id, this.visitor.name, this.visitor.email].join() : "";
      if (known !== [data.visitor.id, data.visitor.name, data.visitor.email].join()) this.link.close();
      this.token = data.token;
      this.visitor = data.visitor;
      this.store.set("visitor", data.visitor.id);
      this.site = data.site;
      this.store.set("token", this.token);
      for (const ticket of data.tickets) this.conversation(ticket.conversation).ticket = ticket;
      this.render();
      if (this.conversations.size || this.outbox.items.length || this.isOpen) this.connect();
    } catch (error) {
      this.emit("error", { code: "session_failed", message: String(error.message || error) });
      this.link.failures += 1;
      this.render();
      this.link.retry(() => { this.ready = this.begin(); });
    }
  }

  connect() { if (this.token) this.link.open(); }

  wake() { if (this.link.wake()) this.connect(); }

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
    this.link.ready();
    for (const item of frame.conversations) {
      const conversation = this.conversation(item.id);
      if (item.ticket) conversation.ticket = item.ticket;
    }
    this.emit("ready", { visitor: this.visitor });
    this.flush();
    this.render();
  }

  onAck(frame) {
    const conversation = this.conversation(frame.conversation);
    if (frame.ticket) conversation.ticket = frame.ticket;
    const item = this.settle(frame.client_msg_id, frame.conversation);
    // the draft it was written in is sent, unless the visitor has written on since
    if (item && this.store.get(item.draft) === item.body) this.store.drop(item.draft);
    if (item) {
      this.add(conversation, { ...item, seq: frame.seq, id: frame.message_id, created_at: frame.created_at,
        author: { type: "visitor", name: null } });
    }
    if (frame.ticket && item && isNew(item.conversation)) {
      this.emit("ticket", frame.ticket);
      // for the deflection rate: no request followed a search
      sendEvent(this, "request");
    }
    this.flush();
    this.render();
  }

  onMessage(frame) {
    const conversation = this.conversation(frame.conversation);
    // our own message, seen from another tab
    this.settle(frame.client_msg_id, frame.conversation);
    // a gap: close the socket; the reconnect resumes from the last seq we hold
    if (frame.seq > this.lastSeq(conversation) + 1 && this.link.ws) { this.link.restart(); return; }
    if (!this.add(conversation, frame)) return;
    if (frame.author.type !== "visitor") {
      this.emit("message", frame);
      this.announce(`${frame.author.name || "Support"}: ${local(frame)}`);
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
    const item = this.outbox.find(frame.ref);
    // rate limited: the entry stays in the outbox and goes again when the server says
    if (frame.code === "rate_limited") {
      // about no entry (too many new requests): the socket closes next; reconnect that late
      if (!item) { this.link.retryAfter = frame.retry_after; return; }
      this.outbox.hold(item.client_msg_id, frame.retry_after);
      clearTimeout(this.limitTimer);
      this.limitTimer = setTimeout(() => this.flush(), frame.retry_after * 1000 + 50);
      return;
    }
    if (item && PERMANENT.has(frame.code)) {
      this.outbox.fail(item, frame.message);
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
    const { seq, id, body, created_at, author, client_msg_id, attachments } = message;
    messages.push({ seq, id, body, created_at, author, client_msg_id, attachments });
    messages.sort((a, b) => a.seq - b.seq);
    this.store.set(`messages:${conversation.id}`, messages.slice(-KEEP_MESSAGES));
    return true;
  }

  // the outbox entry `id` is stored in `conversation`; a view of the new request follows it
  settle(id, conversation) {
    const item = this.outbox.settle(id, conversation);
    if (item && this.view.conversation === item.conversation) this.view = { name: "conversation", conversation };
    return item;
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
    if (this.link.online) this.link.send(JSON.stringify({ type: "read", conversation: conversation.id, seq }));
  }

  // -- sending
  // where the composer of the view on screen keeps its draft: per visitor (never another
  // visitor's text on a shared browser) and conversation, "new" for a new request
  draftKey() {
    // the visitor's id is stored with each session (begin)
    const visitor = this.store.get("visitor", "");
    return visitor && `draft:${visitor}:${this.view.conversation || "new"}`;
  }

  // attach.js wraps this on the panel to add the files uploaded for the message
  enqueue(body, conversation, extra) {
    const item = this.outbox.add(body, conversation, { ...extra, draft: this.draftKey() });
    this.connect();
    this.flush();
    if (this.link.blocked) this.flushHttp();
    return item;
  }

  flush() {
    if (!this.link.online) return;
    const limits = (this.site && this.site.limits) || { max_frame_bytes: 16384 };
    for (const item of this.outbox.due(this.link.ws)) {
      const frame = this.outbox.frame(item, limits.max_frame_bytes);
      if (frame) this.link.send(frame);
      else this.render();
    }
  }

  // websockets can be blocked while plain HTTPS works: the same entries, one POST each
  // (fallback.js, loaded then; offline, the import fails and the outbox keeps everything)
  flushHttp() { if (navigator.onLine) import("./fallback.js").then((module) => module.flushHttp(this), () => {}); }

  // -- on screen
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
    this.body.replaceChildren(views[view.name](this, view));
    this.render();
    this.markRead();
    this.focus();
  }

  // home: the heading, not the search box (no keyboard popping up on phones; Tab reaches it)
  focus() {
    const target = this.view.name === "home" ? this.title : this.body.querySelector(this.view.name === "article" ? "button" : "textarea");
    if (target) target.focus();
  }

  announce(text) {
    this.live.textContent = "";
    setTimeout(() => { this.live.textContent = text; }, 50);
  }

  render() {
    const tickets = [...this.conversations.values()].filter((c) => c.ticket)
      .map((c) => ({ ...c.ticket, conversation: c.id }));
    this.store.set("tickets", tickets);
    const total = [...this.conversations.values()].reduce((sum, c) => sum + this.unread(c), 0);
    if (total !== this.lastUnread) { this.lastUnread = total; this.emit("unread", { count: total }); }
    this.badge.hidden = total === 0;
    this.badge.textContent = String(total);
    this.launcher.setAttribute("aria-label", total ? `Help, ${total} unread` : "Help");
    if (this.isOpen && this.slots) refresh(this);
  }
}

export function mount(core, css) {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  core.root.adoptedStyleSheets = [...core.root.adoptedStyleSheets, sheet];
  const panel = new Panel(core);
  return { call: (command, ...args) => panel.call(command, ...args), panel };
}
