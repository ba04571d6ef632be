// The sandbox page's message menu (right-click a message > Apps) and the bot's forms (modals),
// shown as a dialog to the person they were opened for. Loaded after app.js: it uses its
// state, el(), api() and setStatus().
"use strict";

const COMPONENT = { ACTION_ROW: 1, STRING_SELECT: 3, TEXT_INPUT: 4, TEXT_DISPLAY: 10, LABEL: 18 };
const PARAGRAPH = 2;

// posting an ordinary message ----------------------------------------------------------------

// Offered in the composer's list beside the slash commands: a person's plain message.
const POST_MESSAGE = {
  name: "(message)",
  label: "Post a message",
  description: "An ordinary message as this person, with a picture if you like; right-click it for Apps › Animate.",
  options: [
    { name: "content", type: OPTION.STRING, max_length: 2000 },
    { name: "file", type: OPTION.ATTACHMENT },
  ],
};

async function postMessage() {
  const data = new FormData();
  data.append("user_id", state.userId);
  data.append("channel_id", state.channelId);
  data.append("content", $("option-content").value);
  const file = $("option-file");
  if (file.files.length) data.append("file", file.files[0], file.files[0].name);
  await api("/sandbox/post", { method: "POST", body: data });
  $("option-content").value = "";
  file.value = "";
}

// the message menu ---------------------------------------------------------------------------

function closeMessageMenu() {
  const open = $("message-menu");
  if (open) open.remove();
}

function openMessageMenu(event) {
  const article = event.target.closest("article.message[data-id]");
  if (!article || !state.items.has(article.dataset.id)) return;
  event.preventDefault();
  closeMessageMenu();
  const messageId = article.dataset.id;
  const names = state.messageCommands || [];
  const menu = el("div", { id: "message-menu", class: "message-menu", role: "menu" },
    el("div", { class: "message-menu-heading" }, "Apps"),
    names.length
      ? names.map((name) => el("button", {
        type: "button", role: "menuitem", class: "message-menu-item",
        onclick: () => runMessageCommand(messageId, name),
      }, (state.messageCommandLabels || {})[name] || name))
      : el("div", { class: "message-menu-empty" }, "No apps for messages here"));
  menu.style.left = `${event.clientX}px`;
  menu.style.top = `${event.clientY}px`;
  document.body.append(menu);
}

async function runMessageCommand(messageId, name) {
  closeMessageMenu();
  setStatus(`Running ${name} as ${userName(state.userId)}…`);
  try {
    await api("/sandbox/message-command", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message_id: messageId, name, user_id: state.userId }),
    });
    setStatus(`${name} sent as ${userName(state.userId)}.`);
  } catch (error) {
    setStatus(error.message, true);
  }
}

// the bot's forms ----------------------------------------------------------------------------

function formInput(child, labelText) {
  const id = `modal-${child.custom_id}`;
  const required = child.required !== false;
  if (child.type === COMPONENT.TEXT_INPUT) {
    const attrs = {
      id, "data-custom-id": child.custom_id, required,
      minlength: child.min_length, maxlength: child.max_length, placeholder: child.placeholder,
      "aria-label": labelText,
    };
    const input = child.style === PARAGRAPH ? el("textarea", { ...attrs, rows: 4 }) : el("input", { ...attrs, type: "text" });
    input.value = child.value || "";
    return input;
  }
  if (child.type === COMPONENT.STRING_SELECT) {
    const many = (child.max_values || 1) > 1;
    return el("select", { id, "data-custom-id": child.custom_id, multiple: many, required, "aria-label": labelText },
      (child.options || []).map((o) => el("option", { value: o.value, selected: !!o.default }, o.description ? `${o.label} — ${o.description}` : o.label)));
  }
  return el("div", { class: "unsupported" }, "(an input the sandbox cannot show)");
}

function formField(component) {
  if (component.type === COMPONENT.LABEL) {
    const input = formInput(component.component, component.label);
    return el("div", { class: "modal-field" },
      el("label", { class: "field-label", for: input.id }, component.label),
      component.description ? el("small", {}, component.description) : null,
      input);
  }
  if (component.type === COMPONENT.ACTION_ROW) {
    const child = (component.components || [])[0] || {};
    const input = formInput(child, child.label || "");
    return el("div", { class: "modal-field" }, el("label", { class: "field-label", for: input.id }, child.label || ""), input);
  }
  if (component.type === COMPONENT.TEXT_DISPLAY) return el("div", { class: "modal-text" }, renderText(component.content));
  return el("div", { class: "unsupported" }, "(a component the sandbox cannot show)");
}

function formValues(form) {
  const values = {};
  for (const input of form.querySelectorAll("[data-custom-id]")) {
    const key = input.dataset.customId;
    values[key] = input.tagName === "SELECT" ? [...input.selectedOptions].map((o) => o.value) : input.value;
  }
  return values;
}

function openModal(summary) {
  const modal = summary.modal;
  const old = $("modal");
  if (old) old.remove();
  const error = el("p", { class: "modal-error", role: "alert" });
  const form = el("form", { method: "dialog", class: "modal-form" },
    el("h2", { class: "modal-title" }, modal.title),
    (modal.components || []).map(formField),
    error,
    el("div", { class: "modal-actions" },
      el("button", { type: "button", class: "btn style-2", value: "cancel", onclick: () => dialog.close() }, "Cancel"),
      el("button", { type: "submit", class: "btn style-1", id: "modal-submit" }, "Submit")));
  const dialog = el("dialog", { id: "modal", class: "modal", "aria-label": modal.title }, form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("/sandbox/modal", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ interaction_id: summary.id, values: formValues(form), user_id: state.userId }),
      });
      dialog.close();
      dialog.remove();
    } catch (problem) {
      error.textContent = problem.message;
    }
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

function maybeOpenModal(summary) {
  if (summary.modal && summary.user_id === state.userId) openModal(summary);
}

document.addEventListener("DOMContentLoaded", () => {
  $("messages").addEventListener("contextmenu", openMessageMenu);
  document.addEventListener("click", (event) => {
    if (!event.target.closest("#message-menu")) closeMessageMenu();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeMessageMenu();
  });
});
