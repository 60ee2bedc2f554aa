// The widget's exactly-once outbox, under node's own test runner: no browser, no server.
// A "reload" is a new Outbox on the same storage; a "connection" is any object.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Outbox, PERMANENT } from "../../widget_static/outbox.js";

// what localStorage does to a value: it keeps a JSON string, not the object
class FakeStorage {
  constructor() { this.data = new Map(); }
  get(key, fallback) { return this.data.has(key) ? JSON.parse(this.data.get(key)) : fallback; }
  set(key, value) { this.data.set(key, JSON.stringify(value)); }
}

const sent = (outbox, connection, now) =>
  outbox.due(connection, now).map((item) => JSON.parse(outbox.frame(item, 16384)));

test("a message is stored before anything is sent, with a fresh id", () => {
  const storage = new FakeStorage();
  const outbox = new Outbox(storage);
  const first = outbox.add("Sync stopped working", null, { severity: "high" });
  const second = outbox.add("It still fails", "cv_1");
  assert.match(first.client_msg_id, /^[0-9a-f-]{36}$/);
  assert.notEqual(first.client_msg_id, second.client_msg_id);
  assert.equal(first.conversation, `new:${first.client_msg_id}`);
  assert.equal(second.conversation, "cv_1");
  assert.deepEqual(storage.get("outbox").map((item) => [item.body, item.severity]),
    [["Sync stopped working", "high"], ["It still fails", undefined]]);
});

test("the outbox survives a reload with its ids and its order", () => {
  const storage = new FakeStorage();
  const before = new Outbox(storage);
  const items = ["one", "two", "three"].map((body) => before.add(body, "cv_1"));
  const after = new Outbox(storage);
  assert.deepEqual(after.items.map((item) => [item.client_msg_id, item.body]),
    items.map((item) => [item.client_msg_id, item.body]));
  assert.deepEqual(sent(after, {}).map((frame) => frame.body), ["one", "two", "three"]);
});

test("each entry goes once per connection and again, with the same id, after a reconnect", () => {
  const storage = new FakeStorage();
  const outbox = new Outbox(storage);
  const item = outbox.add("hello", "cv_1");
  const first = {};
  assert.deepEqual(sent(outbox, first).map((frame) => frame.client_msg_id), [item.client_msg_id]);
  assert.deepEqual(sent(outbox, first), [], "not twice on one connection");
  const second = {};
  const again = sent(outbox, second);
  assert.deepEqual(again, [{ type: "send", conversation: "cv_1", client_msg_id: item.client_msg_id,
    body: "hello" }]);
  assert.deepEqual(sent(new Outbox(storage), {}).map((frame) => frame.client_msg_id), [item.client_msg_id],
    "and after a reload");
});

test("an ack removes its entry exactly once", () => {
  const storage = new FakeStorage();
  const outbox = new Outbox(storage);
  const acked = outbox.add("first", "cv_1");
  const kept = outbox.add("second", "cv_1");
  assert.equal(outbox.settle(acked.client_msg_id, "cv_1"), acked);
  assert.equal(outbox.settle(acked.client_msg_id, "cv_1"), null, "a second ack (or the message from another tab) finds nothing");
  assert.equal(outbox.settle(undefined, "cv_1"), null);
  assert.deepEqual(outbox.items, [kept]);
  assert.deepEqual(new Outbox(storage).items.map((item) => item.client_msg_id), [kept.client_msg_id]);
  assert.deepEqual(sent(outbox, {}).map((frame) => frame.body), ["second"]);
});

test("a new request whose ack was lost is sent again with conversation null, not as a second ticket", () => {
  const storage = new FakeStorage();
  const outbox = new Outbox(storage);
  const request = outbox.add("Invoice is wrong", null, { severity: "normal" });
  const [first] = sent(outbox, {});
  // the socket dies before the ack; the page is reloaded; a new socket opens
  const [again] = sent(new Outbox(storage), {});
  for (const frame of [first, again]) {
    assert.equal(frame.conversation, null);
    assert.equal(frame.client_msg_id, request.client_msg_id);
    assert.equal(frame.severity, "normal");
  }
});

test("follow-ups of a new request wait for its ack, then go in order to its conversation", () => {
  const outbox = new Outbox(new FakeStorage());
  const request = outbox.add("Sync stopped working", null);
  const notes = ["note 1", "note 2"].map((body) => outbox.add(body, request.conversation));
  const connection = {};
  assert.deepEqual(sent(outbox, connection).map((frame) => frame.body), ["Sync stopped working"]);
  assert.deepEqual(sent(outbox, connection), [], "the follow-ups have no conversation to go to yet");
  outbox.settle(request.client_msg_id, "cv_9");
  const frames = sent(outbox, connection);
  assert.deepEqual(frames.map((frame) => [frame.body, frame.conversation, frame.client_msg_id]),
    [["note 1", "cv_9", notes[0].client_msg_id], ["note 2", "cv_9", notes[1].client_msg_id]]);
});

test("follow-ups of a request that failed for good fail too", () => {
  const outbox = new Outbox(new FakeStorage());
  const request = outbox.add("x".repeat(20000), null);
  const note = outbox.add("more", request.conversation);
  const [item] = outbox.due({});
  assert.equal(outbox.frame(item, 16384), null, "a frame the server would close on is never sent");
  assert.equal(request.failed, "this message is too long; please shorten it");
  assert.deepEqual(sent(outbox, {}), []);
  assert.equal(note.failed, "its request could not be sent");
});

test("a permanent refusal keeps the entry, marked, across a reload", () => {
  const storage = new FakeStorage();
  const outbox = new Outbox(storage);
  const item = outbox.add("hi", "cv_closed");
  assert.ok(PERMANENT.has("conversation_closed"));
  outbox.fail(item, "This request is closed.");
  const reloaded = new Outbox(storage);
  assert.equal(reloaded.items[0].failed, "This request is closed.");
  assert.deepEqual(sent(reloaded, {}), []);
});

test("a rate-limited entry waits, and holding everything keeps the order", () => {
  const outbox = new Outbox(new FakeStorage());
  const [a, b] = ["a", "b"].map((body) => outbox.add(body, "cv_1"));
  const connection = {};
  assert.equal(sent(outbox, connection, 1000).length, 2);
  outbox.hold(a.client_msg_id, 30, 1000);
  const c = outbox.add("c", "cv_1");
  assert.deepEqual(sent(outbox, connection, 20000), [], "nothing overtakes the held entry");
  assert.deepEqual(sent(outbox, connection, 31000).map((frame) => frame.client_msg_id),
    [a.client_msg_id, c.client_msg_id], "the held entry again, on the same socket, then the new one");
  assert.ok(b);
});
