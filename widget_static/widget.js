/* widget-server loader: draws the launcher, replays the HelpWidget queue, and loads the
   panel module only on intent (pointer, focus, click, an API call) or when the browser idles.
   Everything lives in one open shadow root; styles are adopted stylesheets, so the widget
   runs under a strict Content-Security-Policy and host CSS cannot reach it. */
(() => {
  "use strict";
  const previous = window.HelpWidget;
  if (previous && previous.version) return; // loaded twice: the first copy stays in charge
  const script = document.currentScript || document.querySelector("script[data-site]");
  const config = {
    site: script.dataset.site,
    server: new URL(script.src).origin,
    side: script.dataset.side === "left" ? "left" : "right",
    zIndex: parseInt(script.dataset.zIndex, 10) || 2147483000,
    mode: script.dataset.mode || "chat",
    version: "__VERSION__",
  };
  const listeners = {};
  const emit = (name, detail) => {
    for (const listener of listeners[name] || []) {
      try { listener(detail); } catch (error) { setTimeout(() => { throw error; }); }
    }
    window.dispatchEvent(new CustomEvent("helpwidget:" + name, { detail }));
  };

  const host = document.createElement("help-widget");
  const root = host.attachShadow({ mode: "open" });
  const sheet = new CSSStyleSheet();
  const edge = config.side + ":20px";
  sheet.replaceSync(
    `:host{all:initial!important;display:block!important;position:fixed!important;` +
    `bottom:0!important;${config.side}:0!important;width:0!important;height:0!important;` +
    `z-index:${config.zIndex}!important;visibility:visible!important;opacity:1!important;` +
    `transform:none!important;filter:none!important}` +
    `*{box-sizing:border-box}[hidden]{display:none!important}` +
    `.launcher{all:initial;position:fixed;bottom:20px;${edge};width:56px;height:56px;` +
    `border-radius:50%;background:#1a56db;color:#fff;cursor:pointer;display:flex;` +
    `align-items:center;justify-content:center;box-shadow:0 4px 14px rgba(0,0,0,.3)}` +
    `.launcher:focus-visible{outline:3px solid #f59e0b;outline-offset:3px}` +
    `.launcher svg{width:28px;height:28px;fill:currentColor}` +
    `.badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 6px;` +
    `border-radius:10px;background:#c81e1e;color:#fff;font:700 12px/20px system-ui,sans-serif;` +
    `text-align:center}.gone{display:none!important}`
  );
  root.adoptedStyleSheets = [sheet];

  const launcher = document.createElement("button");
  launcher.className = "launcher";
  launcher.type = "button";
  launcher.setAttribute("aria-label", "Help");
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-haspopup", "dialog");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
  svg.append(path);
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.hidden = true;
  launcher.append(svg, badge);
  root.append(launcher);

  let panel = null;
  let loading = null;
  let pending = [];
  const load = () => {
    const base = `${config.server}/widget/${config.version}/`;
    loading = loading || Promise.all([
      import(base + "panel.js"),
      fetch(base + "panel.css", { credentials: "omit" }).then((response) => response.text()),
    ]).then(
      ([module, css]) => {
        panel = module.mount({ root, host, launcher, badge, config, emit }, css);
        for (const args of pending) panel.call(...args);
        pending = [];
      },
      (error) => {
        loading = null;
        emit("error", { code: "load_failed", message: String(error) });
      }
    );
    return loading;
  };

  const api = (command, ...args) => {
    if (command === "on") {
      (listeners[args[0]] = listeners[args[0]] || []).push(args[1]);
    } else if (command === "show" || command === "hide") {
      launcher.classList.toggle("gone", command === "hide");
      if (command === "hide" && panel) panel.call("close");
    } else if (panel) {
      panel.call(command, ...args);
    } else {
      pending.push([command, ...args]);
      load();
    }
  };
  api.version = config.version;
  window.HelpWidget = api;

  launcher.addEventListener("pointerenter", load, { once: true });
  launcher.addEventListener("focus", load, { once: true });
  launcher.addEventListener("click", () => api("toggle"));
  const attach = () => {
    // a child of <html>, not <body>: a transformed or clipped body cannot pin or hide it
    document.documentElement.append(host);
    for (const args of (previous && previous.q) || []) api(...args);
    if (window.requestIdleCallback) requestIdleCallback(load, { timeout: 4000 });
    else setTimeout(load, 2000);
  };
  if (document.body) attach();
  else document.addEventListener("DOMContentLoaded", attach, { once: true });
})();
