// A safe Markdown subset for agents' replies, shared by the widget and the console:
// paragraphs, line breaks, **bold**, *italic*, `code`, ``` code blocks ```, "- " and "1. "
// lists, and http(s) links ([text](url) or bare) that open in a new tab. Every node is made
// with createElement and filled with textContent: the text is never parsed as HTML, and a
// link that is not http(s) (javascript:, data:, ...) stays plain text. No imports, so any
// page can load it.

const el = (tag, ...children) => {
  const node = document.createElement(tag);
  node.append(...children);
  return node;
};

// the URL when it is absolute http(s), else null
export function safeUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch { return null; }
}

function link(href, ...children) {
  const node = el("a", ...children);
  node.href = href;
  node.target = "_blank";
  node.rel = "noopener noreferrer";
  return node;
}

// `code`, **bold**, *italic* or _italic_, [text](url), a bare http(s) URL
const INLINE = /`([^`\n]+)`|\*\*(.+?)\*\*|(?:\*([^*\s](?:[^*]*[^*\s])?)\*|\b_([^_\s](?:[^_]*[^_\s])?)_\b)|\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>]*[^\s<>.,;:!?)\]'"])/g;

// the nodes of one line of inline text
export function inline(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    const [whole, code, bold, star, under, label, target, bare] = match;
    const href = safeUrl(target || bare || "");
    let node = null;
    if (code) node = el("code", code);
    else if (bold) node = el("strong", ...inline(bold));
    else if (star || under) node = el("em", ...inline(star || under));
    else if (label && href) node = link(href, ...inline(label));
    else if (bare && href) node = link(href, bare);
    if (!node) continue;  // a link to anything but http(s): left as the text it was
    if (match.index > last) nodes.push(text.slice(last, match.index));
    nodes.push(node);
    last = match.index + whole.length;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}

const ITEM = /^\s{0,3}(?:([-*+])|(\d{1,9})[.)])\s+(.*)$/;

// lines joined by <br>, inline marks in each
function lines(texts) {
  return texts.flatMap((text, index) => (index ? [el("br"), ...inline(text)] : inline(text)));
}

// a DocumentFragment of the Markdown subset in `source`
export function render(source) {
  const out = document.createDocumentFragment();
  const rows = String(source).replace(/\r\n?/g, "\n").split("\n");
  let paragraph = [];
  let list = null;
  const endParagraph = () => {
    if (paragraph.length) out.append(el("p", ...lines(paragraph)));
    paragraph = [];
  };
  for (let index = 0; index < rows.length; index += 1) {
    const row = rows[index];
    if (/^\s{0,3}```/.test(row)) {
      endParagraph();
      list = null;
      const code = [];
      while (++index < rows.length && !/^\s{0,3}```/.test(rows[index])) code.push(rows[index]);
      out.append(el("pre", el("code", code.join("\n"))));
      continue;
    }
    const item = ITEM.exec(row);
    if (item) {
      endParagraph();
      const tag = item[1] ? "ul" : "ol";
      if (!list || list.localName !== tag) {
        list = el(tag);
        if (item[2] && item[2] !== "1") list.start = Number(item[2]);
        out.append(list);
      }
      list.append(el("li", ...inline(item[3])));
    } else if (!row.trim()) {
      endParagraph();
      list = null;
    } else if (list && /^\s+\S/.test(row)) {
      list.lastChild.append(el("br"), ...inline(row.trim()));  // a list item's next line
    } else {
      list = null;
      paragraph.push(row);
    }
  }
  endParagraph();
  return out;
}
