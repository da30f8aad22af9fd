/**
 * The API key prompt: opened when the API answers 401 (or from the sidebar's
 * "API key" button). The key is kept in the browser's storage and sent with
 * every API call; saving or forgetting it reloads the page's data.
 */
import { storage } from "./storage.js";
import { hideNotice, ui } from "./ui.js";

export function promptKey(reason) {
  ui.keyButton.hidden = false;
  ui.keyReason.textContent = reason;
  ui.keyInput.value = storage.apiKey ?? "";
  ui.keyForget.hidden = !storage.apiKey;
  if (!ui.keyDialog.open) ui.keyDialog.showModal();
  ui.keyInput.focus();
}

/** `onChange()` runs after a key is saved or forgotten. */
export function setUpKeyPrompt(onChange) {
  if (storage.apiKey) ui.keyButton.hidden = false;
  ui.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = ui.keyInput.value.trim();
    if (!key) return;
    storage.apiKey = key;
    ui.keyDialog.close();
    hideNotice();
    onChange();
  });
  ui.keyCancel.addEventListener("click", () => ui.keyDialog.close());
  ui.keyForget.addEventListener("click", () => {
    storage.apiKey = null;
    ui.keyDialog.close();
    onChange();
  });
  ui.keyButton.addEventListener("click", () =>
    promptKey("The key this page sends to the server. It stays in this browser."),
  );
}
