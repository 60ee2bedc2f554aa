// DOM helpers shared by the panel's modules. Every element is built with createElement and
// filled with textContent, so nothing from the network ever becomes markup.

// h("p", {class: "hint", text: "Hi", onclick: fn}, ...children): `text` sets textContent,
// `on...` adds a listener, true sets an empty attribute, false/null/undefined skip it
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}
