// One help article inside the panel, loaded when the visitor opens it: the article, "Was this
// article helpful?", and comments. Article HTML is sanitised by the server; here it is parsed
// inert with DOMParser and rebuilt element by element from an allow-list, so nothing from the
// network becomes markup.

import { h } from "./dom.js";
import { api, sendEvent } from "./articles.js";

const KEEP = new Set(["P", "H2", "H3", "H4", "UL", "OL", "LI", "STRONG", "EM", "B", "I", "CODE", "PRE",
  "BLOCKQUOTE", "A", "TABLE", "THEAD", "TBODY", "TR", "TH", "TD", "BR", "HR"]);

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
