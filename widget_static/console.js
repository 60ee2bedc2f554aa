// The agent console's small script: live inbox, live ticket view, countdowns, saved replies,
// keyboard shortcuts and opt-in desktop notifications. Plain modern JS, no framework.
// Data only ever reaches the DOM through textContent (or as inert nodes the server escaped).

import { fileList, setUpReplyFiles } from "./console-attach.js";

const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 5000;
const COUNTDOWN_EVERY_MS = 30000;
const PING_EVERY_MS = 25000;

// the agents' names of statuses (widget_server/web/console/present.py STATUS_LABELS)
const STATUS_LABELS = { new: "New", open: "Open", pending: "Pending (waiting on the visitor)",
  solved: "Solved", closed: "Closed" };

const inboxResults = document.getElementById("inbox-results");
const ticketView = document.getElementById("ticket-view");

// -- countdowns: the same wording as widget_server/web/console/present.py
function duration(ms) {
  const minutes = Math.floor(Math.abs(ms) / 60000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  if (days) return `${days} d ${hours} h`;
  if (hours) return `${hours} h ${mins} min`;
  return mins ? `${mins} min` : "less than a minute";
}

function countdown(due) {
  const ms = due.getTime() - Date.now();
  return ms > 0 ? `in ${duration(ms)}` : `overdue by ${duration(ms)}`;
}

function refreshCountdowns() {
  for (const time of document.querySelectorAll("time.countdown[datetime]")) {
    const due = new Date(time.getAttribute("datetime"));
    if (Number.isNaN(due.getTime())) continue;
    time.textContent = countdown(due);
    const row = time.closest("tr");
    if (row && due.getTime() <= Date.now()) row.classList.add("overdue");
  }
}

refreshCountdowns();
setInterval(refreshCountdowns, COUNTDOWN_EVERY_MS);

// -- the live socket, reconnecting with backoff. ``onReady`` runs on every (re)connect:
// whatever happened between rendering the page and the socket being ready is fetched then.
function connect(onFrame, onReady) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let socket = null;
  let delay = 1000;
  let pinger = 0;

  function open() {
    socket = new WebSocket(`${scheme}://${location.host}/ws/console`);
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      // console-workspace.js (queue, collision, presence) listens for the same frames
      document.dispatchEvent(new CustomEvent("console:frame", { detail: frame }));
      if (frame.type === "ready") {
        delay = 1000;
        document.body.dataset.live = "connected";
        onReady();
      }
      onFrame(frame);
    });
    socket.addEventListener("close", () => {
      document.body.dataset.live = "reconnecting";
      clearInterval(pinger);
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 30000);
    });
    pinger = setInterval(() => send({ type: "ping" }), PING_EVERY_MS);
  }

  // whether the frame went out: nothing is queued while the socket is (re)connecting
  function send(frame) {
    const open = socket !== null && socket.readyState === WebSocket.OPEN;
    if (open) socket.send(JSON.stringify(frame));
    return open;
  }

  open();
  return { send };
}

// -- desktop notifications: opt-in, only for visitor messages while the tab is hidden
function notifyVisitorMessage(frame) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  if (!document.hidden || !frame.message || frame.message.author.type !== "visitor") return;
  const note = new Notification(`New message on #${frame.ticket}`, {
    body: `${frame.subject || ""}\n${frame.message.body}`.slice(0, 200),
    tag: `${frame.site}:${frame.ticket}`,
  });
  note.addEventListener("click", () => {
    window.focus();
    location.assign(`/console/tickets/${encodeURIComponent(frame.site)}/${frame.ticket}`);
  });
}

function setUpNotificationButton() {
  const button = document.getElementById("notify-button");
  const state = document.getElementById("notify-state");
  if (!button || !state || !("Notification" in window)) return;
  const show = () => {
    const permission = Notification.permission;
    button.hidden = permission !== "default";
    state.textContent = permission === "granted" ? "Desktop notifications are on."
      : permission === "denied" ? "Desktop notifications are blocked in this browser." : "";
  };
  button.addEventListener("click", async () => {
    await Notification.requestPermission();
    show();
  });
  show();
}

// -- the inbox: refetch this very page and swap the results when something changes
function setUpInbox() {
  setUpNotificationButton();
  const announce = document.getElementById("inbox-announce");
  let running = false;
  let again = false;
  let timer = 0;

  function setTitle(unread) {
    document.title = `${unread > 0 ? `(${unread}) ` : ""}Inbox · widget-server`;
  }

  async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin",
        cache: "no-store", headers: { Accept: "text/html" } });
      if (response.redirected || !response.ok) return;
      const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = parsed.getElementById("inbox-results");
      const current = document.getElementById("inbox-results");
      if (!fresh || !current) return;
      // the row the agent had reached with j/k or Tab keeps the focus across the swap
      const focused = current.contains(document.activeElement) ? document.activeElement : null;
      const row = (focused && focused.closest("tr")) || current.querySelector("tr.selected");
      const href = row && row.querySelector("a[href]") && row.querySelector("a[href]")
        .getAttribute("href");
      current.replaceWith(document.adoptNode(fresh));
      const link = href && [...fresh.querySelectorAll("tr a[href]")]
        .find((candidate) => candidate.getAttribute("href") === href);
      if (link) {
        link.closest("tr").classList.add("selected");
        if (focused) link.focus();
      }
      setTitle(Number(fresh.dataset.unread || 0));
      refreshCountdowns();
    } catch {
      // offline for a moment: the next frame or the reconnect refreshes again
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }

  setTitle(Number(inboxResults.dataset.unread || 0));
  connect((frame) => {
    if (frame.type === "message") {
      notifyVisitorMessage(frame);
      if (frame.message.author.type === "visitor") {
        announce.textContent = `New message on #${frame.ticket}: ${frame.subject || ""}`;
      }
      schedule();
    } else if (frame.type === "ticket") {
      schedule();
    }
  }, schedule);
}

// -- the ticket view
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function when(iso) {
  // the same form as present.when on the server: "26 Nov 2025, 09:05 UTC"
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return iso;
  const two = (n) => String(n).padStart(2, "0");
  return `${two(moment.getUTCDate())} ${MONTHS[moment.getUTCMonth()]} ${moment.getUTCFullYear()}, `
    + `${two(moment.getUTCHours())}:${two(moment.getUTCMinutes())} UTC`;
}

function messageNode(message, visitorName) {
  const type = message.author.type;
  const article = document.createElement("article");
  article.className = `message ${type}${message.internal ? " internal" : ""}`;
  article.dataset.id = String(message.id);
  const author = type === "system" ? "System"
    : message.author.name || (type === "visitor" ? visitorName || "Visitor" : "Agent");
  article.setAttribute("aria-label",
    `${message.internal ? "Internal note" : "Message"} from ${author}`);
  const header = document.createElement("header");
  const who = document.createElement("span");
  who.className = "author";
  who.textContent = author;
  header.append(who, " ");
  if (message.internal) {
    const badge = document.createElement("span");
    badge.className = "badge note-badge";
    badge.textContent = "Internal note";
    header.append(badge, " ");
  }
  const time = document.createElement("time");
  time.dateTime = message.created_at;
  time.textContent = when(message.created_at);
  header.append(time);
  const body = document.createElement("p");
  body.className = "body";
  body.textContent = message.body;
  article.append(header, body);
  if (message.attachments && message.attachments.length) article.append(fileList(message.attachments));
  return article;
}

function setUpSavedReplies(textarea) {
  const data = document.getElementById("saved-replies");
  let replies = [];
  try {
    replies = data ? JSON.parse(data.textContent) : [];
  } catch {
    replies = [];
  }
  const byShortcut = new Map(replies.map((reply) => [reply.shortcut, reply.body]));

  function insert(text, start, end) {
    textarea.setRangeText(text, start, end, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    textarea.focus();
  }

  const select = document.getElementById("saved-reply-select");
  if (select) {
    select.addEventListener("change", () => {
      const body = byShortcut.get(select.value);
      if (body === undefined) return;
      insert(body, textarea.selectionStart, textarea.selectionEnd);
      select.value = "";
    });
  }
  textarea.addEventListener("keydown", (event) => {
    if (event.key !== "Tab" || event.shiftKey || event.ctrlKey || event.altKey || event.metaKey) {
      return;
    }
    if (textarea.selectionStart !== textarea.selectionEnd) return;
    const before = textarea.value.slice(0, textarea.selectionStart);
    const match = /(^|\s)\/([\w-]+)$/.exec(before);
    const body = match ? byShortcut.get(match[2]) : undefined;
    if (body === undefined) return; // Tab keeps moving the focus
    event.preventDefault();
    insert(body, textarea.selectionStart - match[2].length - 1, textarea.selectionStart);
  });
}

function setUpTicket() {
  const site = ticketView.dataset.site;
  const number = Number(ticketView.dataset.ticket);
  const thread = document.getElementById("thread");
  const typing = document.getElementById("typing");
  const reply = document.getElementById("reply-body");
  const status = document.getElementById("ticket-status");
  const csrf = document.body.dataset.csrf || "";
  let typingTimer = 0;
  let lastTypingSent = 0;
  let readTimer = 0;
  const visitorName = (thread.querySelector(".message.visitor .author") || {}).textContent;

  function markRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      fetch(`/console/tickets/${encodeURIComponent(site)}/${number}/read`, {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
      }).catch(() => {});
    }, 500);
  }

  function append(message) {
    if (thread.querySelector(`[data-id="${CSS.escape(String(message.id))}"]`)) return;
    thread.append(messageNode(message, visitorName));
    if (message.author.type === "visitor") {
      typing.textContent = "";
      if (!document.hidden) markRead();
    }
  }

  async function reloadThread() {
    try {
      const response = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok || response.redirected) return;
      const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = parsed.getElementById("thread");
      if (!fresh) return;
      for (const node of fresh.querySelectorAll("article.message[data-id]")) {
        if (!thread.querySelector(`[data-id="${CSS.escape(node.dataset.id)}"]`)) {
          thread.append(document.adoptNode(node));
        }
      }
    } catch {
      // the next reconnect tries again
    }
  }

  const socket = connect((frame) => {
    const here = frame.site === site && frame.ticket === number;
    if (frame.type === "message") {
      notifyVisitorMessage(frame);
      if (here) append(frame.message);
    } else if (frame.type === "typing" && here && frame.author
               && frame.author.type === "visitor") {
      typing.textContent = "Visitor is typing…";
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => { typing.textContent = ""; }, TYPING_SHOWN_MS);
    } else if (frame.type === "ticket" && frame.site === site && frame.ticket
               && frame.ticket.number === number && status) {
      status.textContent = STATUS_LABELS[frame.ticket.status] || frame.ticket.status;
    }
  }, reloadThread);

  if (reply) {
    reply.addEventListener("input", () => {
      const now = Date.now();
      if (now - lastTypingSent < TYPING_EVERY_MS) return;
      // a keystroke before the socket is ready leaves the next one to tell the visitor
      if (socket.send({ type: "typing", site, ticket: number })) lastTypingSent = now;
    });
    setUpSavedReplies(reply);
    setUpReplyFiles(reply.form, csrf);
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) markRead();
  });
}

// -- keyboard: Ctrl+Enter (Cmd+Enter) submits the form of the focused text box
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  const target = event.target;
  if (!(target instanceof HTMLTextAreaElement) || !target.form) return;
  if (!target.form.classList.contains("submit-shortcut")) return;
  event.preventDefault();
  target.form.requestSubmit();
});

// -- focus the first error so keyboard and screen-reader users land on it
const firstError = document.getElementById("action-error");
if (firstError) {
  firstError.tabIndex = -1;
  firstError.focus();
}

if (inboxResults) setUpInbox();
if (ticketView) setUpTicket();
