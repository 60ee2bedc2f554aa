// The agent's working view: keyboard shortcuts, the live queue beside a ticket, collision
// warnings ("Dana is replying") and the team's availability. console.js owns the socket and
// re-dispatches each frame on document as a "console:frame" event; this file only listens.
// Data reaches the DOM through textContent, or as nodes of a page this server rendered.

const COLLISION_SHOWN_MS = 6000;
const QUEUE_DELAY_MS = 250;
const PRESENCE_LABELS = { online: "Online", away: "Away" };

const myId = Number(document.body.dataset.agentId) || null;

// -- keyboard shortcuts: single keys, never while the focus is in a field
function isField(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  if (!(target instanceof HTMLInputElement)) return false;
  return !["checkbox", "radio", "button", "submit", "reset"].includes(target.type);
}

function navItems() {
  return [...document.querySelectorAll("[data-nav-item]")]
    .filter((item) => item.getClientRects().length > 0);
}

function move(step) {
  const items = navItems();
  if (!items.length) return;
  let index = items.findIndex((item) => item.contains(document.activeElement));
  if (index < 0) index = items.findIndex((item) => item.classList.contains("selected"));
  if (index < 0) index = items.findIndex((item) => item.querySelector("[aria-current]"));
  const next = index < 0 ? (step > 0 ? 0 : items.length - 1)
    : Math.min(items.length - 1, Math.max(0, index + step));
  for (const item of items) item.classList.toggle("selected", item === items[next]);
  const link = items[next].querySelector("a[href]");
  if (link) {
    link.focus();
    link.scrollIntoView({ block: "nearest" });
  }
}

function focusField(id) {
  const field = document.getElementById(id);
  if (!field) return false;
  field.scrollIntoView({ block: "center" });
  field.focus();
  return true;
}

function solve() {
  const status = document.getElementById("t-status");
  if (!(status instanceof HTMLSelectElement) || !status.form) return false;
  if (![...status.options].some((option) => option.value === "solved")) return false;
  status.value = "solved";
  status.form.requestSubmit();
  return true;
}

function setUpShortcuts() {
  const dialog = document.getElementById("shortcuts");
  const button = document.getElementById("shortcuts-button");
  const canShow = dialog instanceof HTMLDialogElement && typeof dialog.showModal === "function";
  const showHelp = () => {
    if (canShow && !dialog.open) dialog.showModal();
    return canShow;
  };
  if (button && canShow) {
    button.hidden = false;
    button.addEventListener("click", showHelp);
  }
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isField(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (canShow && dialog.open) return;
    const actions = {
      j: () => { move(1); return true; },
      k: () => { move(-1); return true; },
      r: () => focusField("reply-body"),
      n: () => focusField("note-body"),
      e: solve,
      "?": showHelp,
    };
    const action = actions[event.key];
    if (action && action()) event.preventDefault();
  });
}

// -- the queue beside a ticket: fetched again when something changes, like the inbox
function setUpQueue() {
  if (!document.getElementById("queue") || !document.getElementById("ticket-view")) return;
  let timer = 0;
  let running = false;

  async function refresh() {
    if (running) {
      schedule();
      return;
    }
    running = true;
    try {
      const response = await fetch("/console/queue", { credentials: "same-origin",
        cache: "no-store", headers: { Accept: "text/html" } });
      if (!response.ok || response.redirected) return;
      const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = parsed.getElementById("queue");
      const current = document.getElementById("queue");
      if (!fresh || !current) return;
      const focused = current.contains(document.activeElement)
        ? document.activeElement.getAttribute("href") : null;
      for (const link of fresh.querySelectorAll("a[href]")) {
        if (link.getAttribute("href") === location.pathname) {
          link.setAttribute("aria-current", "page");
        }
      }
      current.replaceWith(document.adoptNode(fresh));
      if (focused) {
        const again = [...fresh.querySelectorAll("a[href]")]
          .find((link) => link.getAttribute("href") === focused);
        if (again) again.focus();
      }
    } catch {
      // offline for a moment: the next frame or the reconnect refreshes again
    } finally {
      running = false;
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, QUEUE_DELAY_MS);
  }

  document.addEventListener("console:frame", (event) => {
    const type = event.detail.type;
    if (type === "message" || type === "ticket" || type === "ready") schedule();
  });
}

// -- collision: another agent typing a reply on the ticket this page shows
function setUpCollision() {
  const view = document.getElementById("ticket-view");
  const line = document.getElementById("collision");
  if (!view || !line) return;
  const site = view.dataset.site;
  const number = Number(view.dataset.ticket);
  const replying = new Map(); // agent id -> [name, timer]

  function show() {
    const names = [...replying.values()].map(([name]) => name);
    line.textContent = !names.length ? ""
      : `${names.join(" and ")} ${names.length === 1 ? "is" : "are"} replying`;
    line.classList.toggle("active", names.length > 0);
  }

  document.addEventListener("console:frame", (event) => {
    const frame = event.detail;
    if (frame.site !== site) return;
    if (frame.type === "typing" && frame.ticket === number && frame.author
        && frame.author.type === "agent" && frame.author.id !== myId) {
      const id = frame.author.id;
      const before = replying.get(id);
      if (before) clearTimeout(before[1]);
      replying.set(id, [frame.author.name || "Another agent", setTimeout(() => {
        replying.delete(id);
        show();
      }, COLLISION_SHOWN_MS)]);
      show();
    } else if (frame.type === "message" && frame.ticket === number
               && frame.message.author.type === "agent" && !frame.message.internal) {
      for (const [, timer] of replying.values()) clearTimeout(timer);
      replying.clear(); // a reply went out: whoever was typing has likely sent it
      show();
    }
  });
}

// -- availability: the agent's own switch in the header, the team's list live
function showPresence(id, status) {
  for (const item of document.querySelectorAll(`[data-agent="${CSS.escape(String(id))}"]`)) {
    item.dataset.presence = status;
    const label = item.querySelector(".presence-label");
    if (label) label.textContent = PRESENCE_LABELS[status] || status;
  }
}

function setUpPresence() {
  const form = document.getElementById("presence-form");
  const select = document.getElementById("presence-status");
  const save = document.getElementById("presence-save");
  if (form && select && save) {
    save.hidden = true; // the change itself saves
    select.addEventListener("change", async () => {
      const status = select.value;
      try {
        const response = await fetch(form.action, { method: "POST", credentials: "same-origin",
          body: new URLSearchParams(new FormData(form)),
          headers: { "X-Requested-With": "console" } });
        if (!response.ok) throw new Error(String(response.status));
        form.dataset.presence = status;
        if (myId !== null) showPresence(myId, status);
      } catch {
        form.requestSubmit(); // the plain form says what went wrong
      }
    });
  }
  document.addEventListener("console:frame", (event) => {
    const frame = event.detail;
    if (frame.type !== "presence" || !frame.agent) return;
    showPresence(frame.agent.id, frame.agent.status);
    if (frame.agent.id === myId && form && select) {
      select.value = frame.agent.status; // set in another tab
      form.dataset.presence = frame.agent.status;
    }
  });
}

setUpShortcuts();
setUpQueue();
setUpCollision();
setUpPresence();
