// Agents' replies and notes in the console's thread, rendered as the widget renders them,
// by the widget's own renderer (markdown.js): a safe Markdown subset built from DOM nodes,
// never innerHTML. Messages added live are rendered as they come.

import { render } from "./markdown.js";

// The thread's agent messages (replies and notes): the server wrote their text, escaped;
// it is read back as text and rendered once.
function renderBody(body) {
  if (body.dataset.rendered) return;
  const rendered = document.createElement("div");
  rendered.className = `${body.className} markdown`;
  rendered.dataset.rendered = "1";
  rendered.append(render(body.textContent || ""));
  body.replaceWith(rendered);
}

function renderThread(thread) {
  for (const body of thread.querySelectorAll(".message.agent .body:not([data-rendered])")) {
    renderBody(body);
  }
}

const thread = document.getElementById("thread");
if (thread) {
  renderThread(thread);
  new MutationObserver(() => renderThread(thread)).observe(thread, { childList: true });
}
