// Help articles inside the panel: search and the anonymous events behind the deflection
// rate. The article view (article.js) and suggestions while writing (compose.js) load later.

import { h } from "./dom.js";

export function api(panel, path, body) {
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

export function results(panel, articles) {
  return articles.map((article) => h("li", {}, h("button", { type: "button", class: "ticket article",
    onclick: () => panel.show({ name: "article", article: article.id }) },
  h("span", { class: "subject", text: article.title }),
  h("span", { class: "last" }, ...(article.snippet_parts || [{ text: article.snippet }]).map((part) =>
    (part.match ? h("mark", { text: part.text }) : document.createTextNode(part.text)))))));
}

// the last search stays on the panel: back from an article shows it again
export function searchBox(panel) {
  const list = h("ul", { class: "results", "aria-live": "polite" });
  let timer = 0;
  const show = (articles) => {
    list.replaceChildren(...results(panel, articles.slice(0, 5)));
    if (!articles.length) list.append(h("li", { class: "empty", text: "No articles match; write to us instead." }));
  };
  const run = (query, settled) => api(panel, `articles?site=${encodeURIComponent(panel.config.site)}&q=${encodeURIComponent(query)}`)
    .then((data) => {
      panel.search = { query: input.value, articles: data.articles };
      show(data.articles);
      if (settled) sendEvent(panel, "search", { query });
    }).catch(() => {});
  const last = panel.search;
  const input = h("input", { type: "search", id: "hw-search", name: "q", autocomplete: "off", maxlength: "200",
    value: last && last.query,
    oninput: () => {
      clearTimeout(timer);
      const query = input.value.trim();
      if (query.length < 2) { panel.search = null; list.replaceChildren(); return; }
      timer = setTimeout(() => run(query, false), 250);
    } });
  if (last) show(last.articles);
  return h("form", { class: "search", role: "search", onsubmit: (event) => {
    event.preventDefault();
    if (input.value.trim()) run(input.value.trim(), true);
  } }, h("label", { for: "hw-search", text: "Search help articles" }), input, list);
}
