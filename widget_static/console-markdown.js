// Agents' replies and notes in the console's thread, rendered as the widget renders them: a
// safe Markdown subset built from DOM nodes, never innerHTML. Paragraphs and line breaks,
// **bold**, *italic* or _italic_, `inline code`, ``` code blocks ```, "- " and "1. " lists,
// and http(s) links (written bare or as [text](url)) that open in a new tab without the
// opener. Anything else stays literal text. Messages added live are rendered as they come.

const INLINE = new RegExp([
  "`([^`\\n]+)`",                                  // 1: code
  "\\*\\*([^*\\n]+?)\\*\\*",                        // 2: bold
  "(?<![\\w*])[*_]([^*_\\s](?:[^*_\\n]*[^*_\\s])?)[*_](?![\\w*])", // 3: italic
  "\\[([^\\]\\n]+)\\]\\((https?://[^\\s)]+)\\)",    // 4, 5: [text](url)
  "(https?://[^\\s<>\"']*[^\\s<>\"'.,;:!?)\\]])",   // 6: a bare link
].join("|"), "g");

function link(url, text) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return document.createTextNode(text);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return document.createTextNode(text);
  }
  const anchor = document.createElement("a");
  anchor.href = parsed.href;
  anchor.target = "_blank";
  anchor.rel = "noopener noreferrer";
  anchor.textContent = text;
  return anchor;
}

function inline(text, parent) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) parent.append(text.slice(last, match.index));
    let node;
    if (match[1] !== undefined) {
      node = document.createElement("code");
      node.textContent = match[1];
    } else if (match[2] !== undefined) {
      node = document.createElement("strong");
      inline(match[2], node);
    } else if (match[3] !== undefined) {
      node = document.createElement("em");
      node.textContent = match[3];
    } else if (match[4] !== undefined) {
      node = link(match[5], match[4]);
    } else {
      node = link(match[6], match[6]);
    }
    parent.append(node);
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

function lines(parent, group) {
  group.forEach((line, index) => {
    if (index) parent.append(document.createElement("br"));
    inline(line, parent);
  });
}

export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  const all = source.replace(/\r\n?/g, "\n").split("\n");
  let index = 0;
  while (index < all.length) {
    const line = all[index];
    if (/^```/.test(line)) {
      const code = [];
      index += 1;
      while (index < all.length && !/^```/.test(all[index])) {
        code.push(all[index]);
        index += 1;
      }
      index += 1; // the closing fence (or the end)
      const pre = document.createElement("pre");
      const block = document.createElement("code");
      block.textContent = code.join("\n");
      pre.append(block);
      fragment.append(pre);
      continue;
    }
    const bullet = /^\s*[-*]\s+(.*)$/;
    const numbered = /^\s*\d{1,9}[.)]\s+(.*)$/;
    const kind = bullet.test(line) ? bullet : numbered.test(line) ? numbered : null;
    if (kind) {
      const list = document.createElement(kind === bullet ? "ul" : "ol");
      while (index < all.length && kind.test(all[index])) {
        const item = document.createElement("li");
        inline(kind.exec(all[index])[1], item);
        list.append(item);
        index += 1;
      }
      fragment.append(list);
      continue;
    }
    if (!line.trim()) {
      index += 1;
      continue;
    }
    const group = [];
    while (index < all.length && all[index].trim() && !/^```/.test(all[index])
           && !bullet.test(all[index]) && !numbered.test(all[index])) {
      group.push(all[index]);
      index += 1;
    }
    const paragraph = document.createElement("p");
    lines(paragraph, group);
    fragment.append(paragraph);
  }
  return fragment;
}

// The thread's agent messages (replies and notes): the server wrote their text, escaped;
// it is read back as text and rendered once.
function renderBody(body) {
  if (body.dataset.rendered) return;
  const rendered = document.createElement("div");
  rendered.className = `${body.className} markdown`;
  rendered.dataset.rendered = "1";
  rendered.append(renderMarkdown(body.textContent || ""));
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
