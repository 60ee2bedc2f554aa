// Admin pages of the console: "Copy" buttons for the embed snippet, new passwords and tokens.
// The buttons stay hidden without JavaScript or without the clipboard API; the text is
// selectable either way. No inline handlers: the page's CSP allows only this nonce'd module.

for (const button of document.querySelectorAll("button.copy[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  const status = button.parentElement.querySelector(".copy-status");
  if (!source || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.textContent);
      if (status) status.textContent = "Copied.";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      if (status) status.textContent = "Press Ctrl+C (or Cmd+C) to copy the selected text.";
    }
  });
}
