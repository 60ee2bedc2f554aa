// Attachments in the agent console: the files of a message shown live (images previewed,
// the others as download links), and files attached to a reply. A reply's files upload as
// soon as they are chosen or dropped, one XMLHttpRequest each (fetch reports no upload
// progress); the form then carries their ids in hidden `attachments` fields. Data reaches the
// DOM through textContent and attributes only.

// the same words as present.file_size on the server
export function fileSize(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1048576) return `${Math.round(size / 1024)} KB`;
  return `${(size / 1048576).toFixed(1)} MB`;
}

function element(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// a message's files, as the ticket view's template lists them
export function fileList(attachments) {
  const list = element("ul", { class: "files" });
  for (const file of attachments || []) {
    const size = fileSize(file.size);
    const link = element("a", { href: file.url, download: file.name });
    if (file.content_type.startsWith("image/")) {
      link.append(element("img", { src: file.url, alt: `${file.name}, ${size}`, loading: "lazy" }));
      list.append(element("li", {}, link));
    } else {
      link.textContent = file.name;
      list.append(element("li", {}, link, " ", element("span", { class: "muted", text: size })));
    }
  }
  return list;
}

// the reply form's files: a file input and drops on the form
export function setUpReplyFiles(form, csrf) {
  const box = document.getElementById("reply-files");
  if (!box) return;
  const input = document.getElementById("reply-file-input");
  const tray = document.getElementById("reply-tray");
  const status = document.getElementById("reply-files-status");
  const alert = document.getElementById("reply-files-error");
  const body = form.elements.body;
  // the uploads under way, each a promise settled when it ends
  const uploading = new Set();
  box.hidden = false;

  const refuse = (text) => {
    alert.textContent = text;
    alert.hidden = false;
  };
  // files alone make a reply
  const settle = () => { body.required = tray.childElementCount === 0; };

  function add(file) {
    alert.hidden = true;
    const item = element("li");
    const bar = element("progress", { max: "100", value: "0", "aria-label": `Uploading ${file.name}` });
    let preview = null;
    if (file.type.startsWith("image/")) {
      preview = URL.createObjectURL(file);
      item.append(element("img", { src: preview, alt: "" }));
    }
    const remove = element("button", { type: "button", "aria-label": `Remove ${file.name}`, text: "Remove" });
    item.append(element("span", { class: "name", text: file.name }), " ",
      element("span", { class: "muted", text: fileSize(file.size) }), " ", bar, " ", remove);
    tray.append(item);
    settle();
    status.textContent = `Uploading ${file.name}…`;

    const request = new XMLHttpRequest();
    const forget = () => {
      request.abort();
      if (preview) URL.revokeObjectURL(preview);
      item.remove();
      settle();
    };
    remove.addEventListener("click", () => {
      forget();
      status.textContent = `${file.name} removed.`;
      body.focus();
    });
    request.open("POST", box.dataset.upload);
    request.setRequestHeader("X-CSRF-Token", csrf);
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = String(Math.round((event.loaded * 100) / event.total));
    });
    request.addEventListener("load", () => {
      const data = request.response || {};
      if (request.status >= 200 && request.status < 300 && data.attachment) {
        bar.replaceWith(element("span", { class: "muted", text: "Ready" }),
          element("input", { type: "hidden", name: "attachments", value: data.attachment.id }));
        status.textContent = `${file.name} is ready to send.`;
        return;
      }
      forget();
      const said = data.error && data.error.message;
      refuse(`Could not attach ${file.name}: ${request.status === 413
        ? `it is too big${said ? ` (${said})` : ""}.` : said || "the server refused it."}`);
    });
    request.addEventListener("error", () => {
      forget();
      refuse(`Could not attach ${file.name}: check the connection and try again.`);
    });
    const done = new Promise((resolve) => request.addEventListener("loadend", resolve));
    uploading.add(done);
    done.then(() => uploading.delete(done));
    const data = new FormData();
    data.append("file", file, file.name || "pasted image");
    request.send(data);
  }

  input.addEventListener("change", () => {
    for (const file of input.files) add(file);
    input.value = "";
  });
  const holdsFiles = (event) => event.dataTransfer && event.dataTransfer.types.includes("Files");
  for (const type of ["dragenter", "dragover"]) {
    form.addEventListener(type, (event) => {
      if (!holdsFiles(event)) return;
      event.preventDefault();
      form.classList.add("dropping");
    });
  }
  form.addEventListener("dragleave", (event) => {
    if (!form.contains(event.relatedTarget)) form.classList.remove("dropping");
  });
  form.addEventListener("drop", (event) => {
    form.classList.remove("dropping");
    if (!holdsFiles(event)) return;
    event.preventDefault();
    for (const file of event.dataTransfer.files) add(file);
  });
  form.addEventListener("paste", (event) => {
    const files = event.clipboardData ? [...event.clipboardData.files] : [];
    if (!files.length) return;
    event.preventDefault();
    for (const file of files) add(file);
  });
  // a reply waits for its files
  form.addEventListener("submit", (event) => {
    if (!uploading.size) return;
    event.preventDefault();
    status.textContent = "Sending once the files are uploaded…";
    Promise.all([...uploading]).then(() => form.requestSubmit());
  });
}
