// Help articles inside the panel: search, suggestions while writing, the article view with
// "Was this article helpful?", comments, and the anonymous events behind the deflection rate.
// Article HTML is sanitised by the server; here it is parsed inert with DOMParser and rebuilt
// element by element from an allow-list, so nothing from the network becomes markup.

import { h } from "./panel.js";

const KEEP = new Set(["P", "H2", "H3", "H4", "UL", "OL", "LI", "STRONG", "EM", "B", "I", "CODE", "PRE",
  "BLOCKQUOTE", "A", "TABLE", "THEAD", "TBODY", "TR", "TH", "TD", "BR", "HR"]);

function api(panel, path, body) {
  const init = body ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) } : {};
  return fetch(`${panel.config.server}/api/widget/v1/${path}`, { mode: "cors", credentials: "omit", ...init })
    .then((response) => (response.status === 204 ? {} : response.json().then((data) => {
      if (!response.ok) throw new Error((data.error && data.error.message) || response.status);
      return data;
    })));
}

function browserId(panel) {
  let id = panel.store.get("browser", null);
  if (!id) { id = crypto.getRandomValues(new Uint32Array(4)).join("-"); panel.store.set("browser", id); }
  return id;
}

export function sendEvent(panel, type, extra = {}) {
  api(panel, "events", { site: panel.config.site, browser: browserId(panel), type, ...extra }).catch(() => {});
}

function rebuild(node, server) {
  if (node.nodeType === Node.TEXT_NODE) return document.createTextNode(node.textContent);
  if (node.nodeType !== Node.ELEMENT_NODE) return null;
  const children = [...node.childNodes].map((child) => rebuild(child, server)).filter(Boolean);
  if (!KEEP.has(node.tagName)) return children.length ? h("span", {}, ...children) : null;
  const copy = document.createElement(node.tagName.toLowerCase());
  if (node.tagName === "A") {
    const target = new URL(node.getAttribute("href") || "", server);
    if (["http:", "https:", "mailto:"].includes(target.protocol)) {
      copy.href = target.href;
      copy.target = "_blank";
      copy.rel = "noopener noreferrer";
    }
  }
  copy.append(...children);
  return copy;
}

function results(panel, articles) {
  return articles.map((article) => h("li", {}, h("button", { type: "button", class: "ticket article",
    onclick: () => panel.show({ name: "article", article: article.id }) },
  h("span", { class: "subject", text: article.title }),
  h("span", { class: "last" }, ...(article.snippet_parts || [{ text: article.snippet }]).map((part) =>
    (part.match ? h("mark", { text: part.text }) : document.createTextNode(part.text)))))));
}

export function searchBox(panel) {
  const list = h("ul", { class: "results", "aria-live": "polite" });
  let timer = 0;
  const run = (query, settled) => api(panel, `articles?site=${encodeURIComponent(panel.config.site)}&q=${encodeURIComponent(query)}`)
    .then((data) => {
      list.replaceChildren(...results(panel, data.articles.slice(0, 5)));
      if (!data.articles.length) list.append(h("li", { class: "empty", text: "No articles match; write to us instead." }));
      if (settled) sendEvent(panel, "search", { query });
    }).catch(() => {});
  const input = h("input", { type: "search", id: "hw-search", name: "q", autocomplete: "off", maxlength: "200",
    oninput: () => {
      clearTimeout(timer);
      const query = input.value.trim();
      if (query.length < 2) { list.replaceChildren(); return; }
      timer = setTimeout(() => run(query, false), 250);
    } });
  return h("form", { class: "search", role: "search", onsubmit: (event) => {
    event.preventDefault();
    if (input.value.trim()) run(input.value.trim(), true);
  } }, h("label", { for: "hw-search", text: "Search help articles" }), input, list);
}

export function suggestions(panel, textarea) {
  const list = h("ul", { class: "results suggestions", "aria-live": "polite" });
  const box = h("div", { hidden: true }, h("p", { class: "hint", text: "These articles may answer it:" }), list);
  let timer = 0;
  textarea.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const text = textarea.value.trim();
      if (text.length < 4) { box.hidden = true; return; }
      api(panel, `articles?site=${encodeURIComponent(panel.config.site)}&q=${encodeURIComponent(text.slice(0, 200))}&limit=3`)
        .then((data) => {
          list.replaceChildren(...results(panel, data.articles.slice(0, 3)));
          box.hidden = !data.articles.length;
        }).catch(() => {});
    }, 400);
  });
  return box;
}

function feedback(panel, article) {
  const voted = panel.store.get(`voted:${article.id}`, false);
  const box = h("div", { class: "feedback", role: "group", "aria-label": "Was this article helpful?" });
  const done = (text) => { box.replaceChildren(h("p", { role: "status", text })); };
  const send = (body) => api(panel, `articles/${article.id}/feedback?site=${encodeURIComponent(panel.config.site)}`, body)
    .then(() => { panel.store.set(`voted:${article.id}`, true); done("Thank you for your feedback."); })
    .catch((error) => done(`Your feedback was not sent: ${error.message}`));
  if (voted) { done("Thank you for your feedback."); return box; }
  const reasons = h("form", { class: "view", hidden: true, onsubmit: (event) => {
    event.preventDefault();
    const reason = reasons.elements.reason.value;
    if (!reason) return;
    const comment = reasons.elements.comment.value.trim();
    send(comment ? { helpful: false, reason, comment } : { helpful: false, reason });
  } }, h("fieldset", {}, h("legend", { text: "What was wrong?" }),
    ...article.feedback_reasons.map((reason) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "reason", value: reason.key, required: true }), h("span", { text: reason.label })))),
  h("label", { for: "hw-feedback-comment", text: "Anything to add? (optional)" }),
  h("textarea", { id: "hw-feedback-comment", name: "comment", rows: "2", maxlength: "1000" }),
  h("button", { type: "submit", class: "primary", text: "Send feedback" }));
  box.append(h("p", { text: "Was this article helpful?" }),
    h("button", { type: "button", text: "Yes", onclick: () => send({ helpful: true }) }),
    h("button", { type: "button", text: "No", onclick: () => { reasons.hidden = false; reasons.querySelector("input").focus(); } }),
    reasons, h("p", { class: "hint", text: "Feedback is anonymous: we store no name, address or token with it." }));
  return box;
}

function comments(panel, article) {
  const list = h("ul", { class: "comments" }, ...article.comments.map((comment) => h("li", {},
    h("span", { class: "who", text: comment.author.name || "Visitor" }), h("p", { class: "text", text: comment.body }))));
  if (!(panel.visitor && panel.visitor.verified)) {
    return h("section", {}, h("h4", { text: "Comments" }), list,
      h("p", { class: "hint", text: "Sign in to the product to comment on articles." }));
  }
  const form = h("form", { class: "composer", onsubmit: (event) => {
    event.preventDefault();
    const body = form.elements.body.value.trim();
    if (!body) return;
    api(panel, `articles/${article.id}/comments`, { site: panel.config.site, token: panel.token, body })
      .then((data) => {
        form.elements.body.value = "";
        list.append(h("li", {}, h("span", { class: "who", text: data.comment.author.name || "You" }),
          h("p", { class: "text", text: data.comment.body })));
      }).catch((error) => panel.emit("error", { code: "comment_failed", message: error.message }));
  } }, h("label", { for: "hw-comment", text: "Add a comment" }),
  h("textarea", { id: "hw-comment", name: "body", rows: "2", maxlength: "2000", required: true }),
  h("button", { type: "submit", class: "primary", text: "Comment" }));
  return h("section", {}, h("h4", { text: "Comments" }), list, form);
}

export function articleView(panel, id) {
  const body = h("div", { class: "article-body" }, h("p", { class: "status", text: "Loading…" }));
  api(panel, `articles/${id}?site=${encodeURIComponent(panel.config.site)}`).then((article) => {
    const parsed = new DOMParser().parseFromString(article.html, "text/html").body;
    body.replaceChildren(h("h3", { text: article.title }),
      ...[...parsed.childNodes].map((node) => rebuild(node, panel.config.server)).filter(Boolean),
      feedback(panel, article), comments(panel, article),
      h("button", { type: "button", class: "link", text: "Still stuck? Start a new request",
        onclick: () => panel.show({ name: "new" }) }));
    sendEvent(panel, "view", { article: article.id });
  }).catch((error) => body.replaceChildren(h("p", { class: "status", text: `This article is not available: ${error.message}` })));
  return h("div", { class: "view" },
    h("button", { type: "button", class: "link", text: "← Back", onclick: () => panel.show({ name: "home" }) }), body);
}
