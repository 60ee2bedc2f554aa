// Attachments in the widget, loaded the first time a visitor attaches a file (the button, a
// paste, a drop) or a message with files is shown. Files upload as soon as they are chosen,
// one POST each with XMLHttpRequest (fetch reports no upload progress); the message then goes
// out with their ids. Files are fetched with the visitor token in a header, never in a URL,
// and shown from object URLs; everything shown is textContent.

import { h } from "./dom.js";
import { PERMANENT } from "./outbox.js";

// a message whose files the server cannot take is not sent again (unsent files expire after a day)
for (const code of ["too_many_attachments", "invalid_attachments", "attachment_not_found", "attachment_already_sent"]) PERMANENT.add(code);

const CSS = `.att{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:6px}
.att li{display:flex;align-items:center;gap:6px;font-size:13px;max-width:100%}
.tray li{background:#f3f4f6;border-radius:8px;padding:4px 6px}
.att img{display:block;max-width:200px;max-height:160px;border-radius:4px}
.tray img{max-width:64px;max-height:64px}
.att .name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;max-width:160px}
.tray button{background:none;border:0;font-size:18px;padding:0 4px}
.dropping{outline:3px dashed #1a56db}
.alert{color:#b91c1c;font-size:13px;margin:0}
.alert:empty,.text:empty{display:none}`;

const styled = new WeakSet();
// the composer form -> its tray: {form, list, status, alert, input, items: [{node, done, request, preview, attachment}]}
const trays = new WeakMap();
// attachment id -> the promise of an object URL of its bytes
const sources = new Map();
let dragTimer = 0;

const composer = (panel) => {
  const field = panel.body.querySelector("#hw-reply, #hw-new-body");
  return field && field.form;
};
const size = (bytes) => (bytes < 1024 ? `${bytes} B` : bytes < 1048576 ? `${Math.round(bytes / 1024)} KB`
  : `${(bytes / 1048576).toFixed(1)} MB`);
const isImage = (type) => /^image\//.test(type);
const stop = (event) => { event.preventDefault(); event.stopImmediatePropagation(); };

export function attach(panel, what, files) {
  if (!styled.has(panel)) {
    styled.add(panel);
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    panel.root.adoptedStyleSheets = [...panel.root.adoptedStyleSheets, sheet];
    wrap(panel);
  }
  if (typeof what !== "string") return show(panel, what, files);
  const form = composer(panel);
  if (!form) return;
  const tray = trayOf(panel, form);
  clearTimeout(dragTimer);
  form.classList.toggle("dropping", what === "dragover");
  if (what === "dragover") dragTimer = setTimeout(() => form.classList.remove("dropping"), 200);
  if (what === "pick") tray.input.click();
  if (what !== "dragover") for (const file of files || []) add(panel, tray, file);
}

function trayOf(panel, form) {
  let tray = trays.get(form);
  if (tray) return tray;
  tray = { items: [], form,
    list: h("ul", { class: "att tray", "aria-label": "Attached files" }),
    status: h("p", { class: "status", role: "status" }),
    alert: h("p", { class: "alert", role: "alert" }),
    input: h("input", { type: "file", multiple: true, hidden: true, onchange: () => {
      for (const file of tray.input.files) add(panel, tray, file);
      tray.input.value = "";
    } }) };
  form.querySelector("[type=submit]").before(tray.list, tray.status, tray.alert, tray.input);
  trays.set(form, tray);
  return tray;
}

// every message the panel queues takes the files uploaded in the composer on screen (the
// panel leaves this to us so that its first open carries none of it); a submit while files
// still upload waits for them
function wrap(panel) {
  const enqueue = panel.enqueue;
  panel.enqueue = function (body, conversation, extra) {
    const tray = trays.get(composer(panel));
    const files = tray ? tray.items.filter((item) => item.attachment).map((item) => item.attachment) : [];
    if (tray) for (const item of tray.items) forget(tray, item);
    return enqueue.call(this, body, conversation,
      files.length ? { ...extra, attachments: files, ids: files.map((file) => file.id) } : extra);
  };
  panel.body.addEventListener("submit", (event) => {
    const tray = trays.get(event.target);
    if (!tray || !tray.items.length) return;
    const uploading = tray.items.filter((item) => !item.attachment);
    if (uploading.length) {
      stop(event);
      tray.status.textContent = "Sending once the files are uploaded…";
      Promise.all(uploading.map((item) => item.done)).then(() => tray.form.isConnected && tray.form.requestSubmit());
    } else if (!tray.form.elements.body.value.trim()) {
      // files without words, from a conversation's composer (a new request needs words)
      stop(event);
      panel.enqueue("", panel.view.conversation);
      panel.render();
    }
  }, true);
}

function forget(tray, item) {
  if (item.request) item.request.abort();
  if (item.preview) URL.revokeObjectURL(item.preview);
  item.node.remove();
  tray.items = tray.items.filter((other) => other !== item);
  words(tray);
}

// files may go without words from a conversation's composer; a new request needs words
function words(tray) {
  tray.form.elements.body.required = !tray.items.length || !tray.form.classList.contains("composer");
}

function add(panel, tray, file) {
  const name = file.name || "pasted image";
  const most = (panel.site && panel.site.attachments && panel.site.attachments.max_files) || 10;
  tray.alert.textContent = tray.items.length < most ? "" : `Could not attach ${name}: at most ${most} files go with one message.`;
  if (tray.alert.textContent) return;
  const item = { preview: isImage(file.type) ? URL.createObjectURL(file) : null };
  const bar = h("progress", { max: "100", value: "0", "aria-label": `Uploading ${name}` });
  item.node = h("li", {},
    item.preview ? h("img", { src: item.preview, alt: "" }) : null,
    h("span", { class: "name", text: name }), h("span", { text: size(file.size) }), bar,
    h("button", { type: "button", "aria-label": `Remove ${name}`, text: "×", onclick: () => {
      forget(tray, item);
      tray.status.textContent = `${name} removed.`;
      tray.form.elements.body.focus();
    } }));
  tray.items.push(item);
  tray.list.append(item.node);
  words(tray);
  tray.status.textContent = `Uploading ${name}…`;
  item.done = upload(panel, item, file, name, bar).then((attachment) => {
    item.attachment = attachment;
    bar.replaceWith(h("span", { text: "Ready" }));
    tray.status.textContent = `${name} is ready to send.`;
  }, (error) => {
    if (!tray.items.includes(item)) return; // the visitor removed it
    forget(tray, item);
    tray.alert.textContent = `Could not attach ${name}: ${error.message}`;
  });
}

async function upload(panel, item, file, name, bar) {
  await panel.ready;
  return new Promise((resolve, reject) => {
    const request = (item.request = new XMLHttpRequest());
    request.open("POST", `${panel.config.server}/api/widget/v1/attachments`);
    request.setRequestHeader("Authorization", `Bearer ${panel.token}`);
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = String(Math.round((event.loaded * 100) / event.total));
    });
    request.addEventListener("loadend", () => {
      const data = request.response || {};
      if (request.status >= 200 && request.status < 300 && data.attachment) return resolve(data.attachment);
      const said = data.error && data.error.message;
      reject(new Error(request.status === 413 ? `it is too big${said ? ` (${said})` : ""}.`
        : said || (request.status ? "the server refused it." : "check your connection and try again.")));
    });
    const body = new FormData();
    body.append("file", file, name);
    request.send(body);
  });
}

// the files of a message, before its time: images as previews, the others as download links
function show(panel, node, attachments) {
  const list = h("ul", { class: "att" }, ...attachments.map((attachment) => {
    const label = `${attachment.name}, ${size(attachment.size)}`;
    const link = h("a", { href: "#", download: attachment.name });
    link.addEventListener("click", async (event) => {
      if (link.getAttribute("href") !== "#") return;
      event.preventDefault();
      link.href = await source(panel, attachment).catch(() => "#");
      if (link.getAttribute("href") !== "#") link.click();
    });
    if (isImage(attachment.content_type)) {
      const image = h("img", { alt: label });
      link.append(image);
      source(panel, attachment).then((url) => { image.src = url; link.href = url; }, () => {
        image.replaceWith(h("span", { class: "name", text: attachment.name }));
      });
    } else {
      link.append(h("span", { class: "name", text: attachment.name }), " ", h("span", { text: size(attachment.size) }));
    }
    return h("li", {}, link);
  }));
  node.lastChild.before(list);
}

function source(panel, attachment) {
  let found = sources.get(attachment.id);
  if (!found) {
    found = panel.ready.then(() => fetch(new URL(attachment.url, panel.config.server), {
      credentials: "omit", headers: { Authorization: `Bearer ${panel.token}` } }))
      .then((response) => {
        if (!response.ok) throw new Error(String(response.status));
        return response.blob();
      })
      .then((blob) => URL.createObjectURL(blob));
    found.catch(() => sources.delete(attachment.id));
    sources.set(attachment.id, found);
  }
  return found;
}
