// The exactly-once outbox. A message the visitor writes is stored here before it is sent;
// it goes out once per connection with the same client_msg_id (the server stores a resend
// once and answers with the original ack) and leaves only when its ack, or the message
// itself seen from another tab, settles it. Pure logic: the storage is injected (anything
// with get(key, fallback) and set(key, value)) and a connection is any object, so
// tests/widget_js/ runs it under node without a browser.

// refusals that no resend can cure: the entry is kept, marked as not sent for good
export const PERMANENT = new Set(["body_too_long", "body_empty", "invalid_severity",
  "conversation_closed", "conversation_not_found", "invalid_frame", "follow_up_not_found"]);

const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
  : ([1e7] + -1e3 + -4e3 + -8e3 + -1e11).replace(/[018]/g, (c) =>
    (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16)));

// a new request has no conversation yet: its entry names `new:<its client_msg_id>`, and so
// do the follow-ups written before its ack
export const isNew = (conversation) => conversation.startsWith("new:");

export class Outbox {
  constructor(store, newId = uuid) {
    this.store = store;
    this.newId = newId;
    this.items = store.get("outbox", []);
    // client_msg_id -> the connection it was last sent on
    this.sentOn = new Map();
    this.heldUntil = 0;
  }

  save() { this.store.set("outbox", this.items); }

  add(body, conversation, extra = {}) {
    const client_msg_id = this.newId();
    const item = { client_msg_id, conversation: conversation || `new:${client_msg_id}`, body,
      created_at: new Date().toISOString(), ...extra };
    this.items.push(item);
    this.save();
    return item;
  }

  find(id) { return id ? this.items.find((item) => item.client_msg_id === id) : undefined; }

  // the message with this id is stored in `conversation`: the entry leaves (the first time
  // only: it is returned then, null after) and follow-ups of a new request get its id
  settle(id, conversation) {
    const item = this.find(id);
    if (!item) return null;
    this.items = this.items.filter((entry) => entry !== item);
    this.sentOn.delete(id);
    if (isNew(item.conversation)) {
      for (const entry of this.items) if (entry.conversation === item.conversation) entry.conversation = conversation;
    }
    this.save();
    return item;
  }

  fail(item, reason) {
    item.failed = reason;
    this.save();
  }

  // a follow-up written before its new request was acknowledged waits for the request's id;
  // if that request failed for good, the follow-up cannot be delivered either
  waitsForRoot(item) {
    if (!isNew(item.conversation) || item.conversation === `new:${item.client_msg_id}`) return false;
    const root = this.items.find((entry) => `new:${entry.client_msg_id}` === item.conversation);
    if (!root || root.failed) this.fail(item, "its request could not be sent");
    return true;
  }

  sendable(item) { return !item.failed && !this.waitsForRoot(item); }

  // what to send on this connection, in order: each entry once per connection, nothing
  // while held after a rate limit (holding them all keeps the order)
  due(connection, now = Date.now()) {
    if (now < this.heldUntil) return [];
    return this.items.filter((item) => {
      if (!this.sendable(item) || this.sentOn.get(item.client_msg_id) === connection) return false;
      this.sentOn.set(item.client_msg_id, connection);
      return true;
    });
  }

  // the server refused `id` for now: send it again, after `seconds`
  hold(id, seconds, now = Date.now()) {
    this.sentOn.delete(id);
    this.heldUntil = now + seconds * 1000;
  }

  // the fields of a `send` frame and of POST /api/widget/v1/messages
  payload(item) {
    return { conversation: isNew(item.conversation) ? null : item.conversation, client_msg_id: item.client_msg_id,
      body: item.body, severity: item.severity, subject: item.subject, follow_up_of: item.follow_up_of,
      attachments: item.ids };
  }

  // the `send` frame, or null (the entry failed) when it is longer than the server takes:
  // the server would close the socket on it
  frame(item, maxBytes) {
    const frame = JSON.stringify({ type: "send", ...this.payload(item) });
    if (new TextEncoder().encode(frame).length <= maxBytes) return frame;
    this.fail(item, "this message is too long; please shorten it");
    return null;
  }
}
