// The sandbox page: one Discord-like channel, live over a websocket, driven through /sandbox/*.
"use strict";

const OPTION = { STRING: 3, INTEGER: 4, BOOLEAN: 5, USER: 6, CHANNEL: 7, ROLE: 8, MENTIONABLE: 9, NUMBER: 10, ATTACHMENT: 11 };
const FLAG_EPHEMERAL = 1 << 6;
const FLAG_LOADING = 1 << 7;

const state = {
  info: null,
  channelId: null,
  userId: null,
  commands: [],
  items: new Map(),      // message id -> {message, visible_to}
  notices: [],           // local "The application did not respond" notes
  pendingClicks: new Map(), // interaction id -> button element
  botOnline: false,
  messageCommands: [],   // names offered on a message's right-click menu (Apps)
  messageCommandLabels: {}, // those names as the acting person's Discord language shows them
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

// names ------------------------------------------------------------------------------------

function userName(id) {
  const user = state.info && state.info.users[id];
  return user ? user.name : `unknown-user`;
}

function authorName(author) {
  const known = state.info && state.info.users[author.id];
  return known ? known.name : author.global_name || author.username || "unknown";
}

function roleName(id) {
  const role = state.info && state.info.roles[id];
  return role ? role.name : "deleted-role";
}

function channelName(id) {
  const channel = state.info && state.info.channels.find((c) => c.id === id);
  return channel ? channel.name : "unknown";
}

function avatarColour(id) {
  const colours = ["#5865f2", "#3ba55c", "#faa61a", "#ed4245", "#eb459e", "#747f8d"];
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return colours[hash % colours.length];
}

function formatTime(iso) {
  const date = new Date(iso);
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return date.toDateString() === today.toDateString() ? `Today at ${time}` : `${date.toLocaleDateString()} ${time}`;
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
}

function discordTimestamp(seconds, style) {
  const date = new Date(Number(seconds) * 1000);
  if (style === "R") {
    const diff = Math.round((date - Date.now()) / 1000);
    const abs = Math.abs(diff);
    const [value, unit] = abs < 60 ? [abs, "second"] : abs < 3600 ? [Math.round(abs / 60), "minute"] : abs < 86400 ? [Math.round(abs / 3600), "hour"] : [Math.round(abs / 86400), "day"];
    if (abs < 45) return diff >= 0 ? "in a few seconds" : "a few seconds ago";
    const plural = value === 1 ? unit : `${unit}s`;
    return diff >= 0 ? `in ${value} ${plural}` : `${value} ${plural} ago`;
  }
  if (style === "t") return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (style === "T") return date.toLocaleTimeString();
  if (style === "d") return date.toLocaleDateString();
  return date.toLocaleString();
}

// markdown (the subset Discord messages from this bot use) ----------------------------------

const INLINE = /```(?:[a-z0-9]*\n)?([\s\S]*?)```|`([^`]+)`|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|\*([^*\n]+)\*|~~([\s\S]+?)~~|<@!?(\d+)>|<@&(\d+)>|<#(\d+)>|@(everyone|here)\b|<t:(-?\d+)(?::([tTdDfFR]))?>|(https?:\/\/[^\s<]+[^\s<.,:;"')\]])/;

function renderMarkdown(text, context) {
  const out = [];
  let rest = text || "";
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) { out.push(rest); break; }
    if (match.index > 0) out.push(rest.slice(0, match.index));
    rest = rest.slice(match.index + match[0].length);
    const [, block, code, bold, underline, italic, strike, userId, roleId, channelId, everyone, unix, tsStyle, url] = match;
    if (block !== undefined) out.push(el("pre", {}, block));
    else if (code !== undefined) out.push(el("code", {}, code));
    else if (bold !== undefined) out.push(el("strong", {}, renderMarkdown(bold, context)));
    else if (underline !== undefined) out.push(el("u", {}, renderMarkdown(underline, context)));
    else if (italic !== undefined) out.push(el("em", {}, renderMarkdown(italic, context)));
    else if (strike !== undefined) out.push(el("s", {}, renderMarkdown(strike, context)));
    else if (userId !== undefined) {
      out.push(el("span", { class: userId === state.userId ? "mention me" : "mention" }, `@${userName(userId)}`));
    } else if (roleId !== undefined) out.push(el("span", { class: "mention" }, `@${roleName(roleId)}`));
    else if (channelId !== undefined) out.push(el("span", { class: "mention" }, `#${channelName(channelId)}`));
    else if (everyone !== undefined) {
      const pings = context && context.mentionEveryone;
      out.push(pings ? el("span", { class: "mention me" }, `@${everyone}`) : `@${everyone}`);
    } else if (unix !== undefined) out.push(el("span", { class: "timestamp-tag" }, discordTimestamp(unix, tsStyle)));
    else if (url !== undefined) out.push(el("a", { href: url, target: "_blank", rel: "noopener" }, url));
  }
  return out;
}

// Block quotes, as Discord draws them: "> " quotes one line, ">>> " the rest of the message.
function renderText(text, context) {
  const out = [];
  const lines = (text || "").split("\n");
  let plain = [];
  let inCode = false;
  const flush = () => {
    if (plain.length) out.push(...renderMarkdown(plain.join("\n"), context));
    plain = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!inCode && line.startsWith(">>> ")) {
      flush();
      out.push(el("blockquote", { class: "quote" }, renderMarkdown([line.slice(4), ...lines.slice(i + 1)].join("\n"), context)));
      return out;
    }
    if (!inCode && line.startsWith("> ")) {
      flush();
      out.push(el("blockquote", { class: "quote" }, renderMarkdown(line.slice(2), context)));
      continue;
    }
    if ((line.split("```").length - 1) % 2 === 1) inCode = !inCode;
    plain.push(line);
  }
  flush();
  return out;
}

// messages ---------------------------------------------------------------------------------

function visible(item) {
  return item.visible_to === null || item.visible_to === state.userId;
}

function mentionsMe(message) {
  if (message.mention_everyone) return true;
  return (message.mentions || []).some((user) => user.id === state.userId);
}

function renderEmbed(embed) {
  const colour = typeof embed.color === "number" ? `#${embed.color.toString(16).padStart(6, "0")}` : null;
  const main = el("div", { class: "embed-main" },
    embed.author && embed.author.name ? el("div", { class: "embed-author" }, embed.author.name) : null,
    embed.title ? el("div", { class: "embed-title" },
      embed.url ? el("a", { href: embed.url, target: "_blank", rel: "noopener" }, embed.title) : embed.title) : null,
    embed.description ? el("div", { class: "embed-description" }, renderText(embed.description)) : null,
    embed.fields && embed.fields.length ? el("div", { class: "embed-fields" },
      embed.fields.map((field) => el("div", { class: field.inline ? "embed-field inline" : "embed-field" },
        el("div", { class: "embed-field-name" }, renderMarkdown(field.name)),
        el("div", { class: "embed-field-value" }, renderText(field.value))))) : null);
  const footerText = [embed.footer && embed.footer.text, embed.timestamp && formatTime(embed.timestamp)].filter(Boolean).join(" • ");
  const node = el("div", { class: "embed" },
    main,
    embed.thumbnail && embed.thumbnail.url ? el("div", { class: "embed-thumbnail" }, el("img", { src: embed.thumbnail.url, alt: "" })) : null,
    embed.image && embed.image.url ? el("div", { class: "embed-image" }, el("img", { src: embed.image.url, alt: "" })) : null,
    footerText ? el("div", { class: "embed-footer" }, footerText) : null);
  if (colour) node.style.borderLeftColor = colour;
  return node;
}

function renderAttachment(attachment) {
  const type = attachment.content_type || "";
  const name = attachment.filename.toLowerCase();
  if (type.startsWith("image/")) {
    return el("a", { href: attachment.url, target: "_blank", rel: "noopener" }, el("img", { src: attachment.url, alt: attachment.filename }));
  }
  if (type.startsWith("video/") || name.endsWith(".mp4") || name.endsWith(".webm")) {
    return el("video", { src: attachment.url, controls: true, preload: "metadata" });
  }
  return el("div", { class: "file-card" },
    el("a", { href: attachment.url, target: "_blank", rel: "noopener", download: attachment.filename }, attachment.filename),
    el("span", { class: "file-size" }, formatSize(attachment.size)));
}

function renderButton(component, message) {
  const label = [component.emoji && component.emoji.name, component.label].filter(Boolean).join(" ");
  if (component.style === 5) {
    return el("a", { class: "btn style-5", href: component.url, target: "_blank", rel: "noopener" }, label || "Link");
  }
  const button = el("button", { class: `btn style-${component.style || 2}`, type: "button", disabled: !!component.disabled }, label || "\u00a0");
  button.addEventListener("click", () => clickButton(message, component.custom_id, button));
  return button;
}

function renderComponents(components, message) {
  const out = [];
  for (const component of components || []) {
    switch (component.type) {
      case 1: out.push(el("div", { class: "component-row" }, renderComponents(component.components, message))); break;
      case 2: out.push(renderButton(component, message)); break;
      case 9: out.push(el("div", { class: "component-row" }, renderComponents(component.components, message),
        component.accessory ? renderComponents([component.accessory], message) : null)); break;
      case 10: out.push(el("div", { class: "text-display" }, renderText(component.content))); break;
      case 12: out.push(el("div", { class: "attachments" }, (component.items || []).map((item) =>
        el("img", { src: item.media && item.media.url, alt: item.description || "" })))); break;
      case 14: out.push(el("hr")); break;
      case 17: out.push(el("div", { class: "container" }, renderComponents(component.components, message))); break;
      default: out.push(el("div", { class: "unsupported" }, "(a component the sandbox cannot show)"));
    }
  }
  return out;
}

function renderMessage(item) {
  const message = item.message;
  const author = message.author;
  const flags = message.flags || 0;
  const isBot = !!author.bot;
  const classes = ["message"];
  if (mentionsMe(message)) classes.push("mentions-me");
  if (flags & FLAG_EPHEMERAL) classes.push("ephemeral");

  const embedUrls = new Set();
  for (const embed of message.embeds || []) {
    for (const key of ["thumbnail", "image"]) if (embed[key] && embed[key].url) embedUrls.add(embed[key].url);
  }
  const attachments = (message.attachments || []).filter((a) => !embedUrls.has(a.url));
  const meta = message.interaction_metadata;

  const body = el("div", { class: "body" },
    meta && meta.name ? el("div", { class: "used-command" },
      el("span", { class: "who" }, userName(meta.user.id)), " used ", el("span", { class: "command-name" }, `/${meta.name}`)) : null,
    el("div", { class: "meta" },
      el("span", { class: "author" }, authorName(author)),
      isBot ? el("span", { class: "app-tag" }, "App") : null,
      el("span", { class: "time", title: message.timestamp }, formatTime(message.timestamp))),
    flags & FLAG_LOADING
      ? el("div", { class: "thinking" }, `${userName(author.id)} is thinking`)
      : el("div", { class: "content" }, renderText(message.content, { mentionEveryone: message.mention_everyone }),
        message.edited_timestamp ? el("span", { class: "edited", title: message.edited_timestamp }, "(edited)") : null),
    (message.embeds || []).map(renderEmbed),
    attachments.length ? el("div", { class: "attachments" }, attachments.map(renderAttachment)) : null,
    message.components && message.components.length ? el("div", { class: "components" }, renderComponents(message.components, message)) : null,
    item.notice ? el("div", { class: "notice" }, item.notice) : null,
    flags & FLAG_EPHEMERAL ? el("div", { class: "only-you" }, "Only you can see this") : null);

  const avatar = el("div", { class: "avatar", "aria-hidden": "true" }, (userName(author.id)[0] || "?").toUpperCase());
  avatar.style.background = avatarColour(author.id);
  return el("article", { class: classes.join(" "), "data-id": message.id }, avatar, body);
}

function renderNotice(notice) {
  const fake = {
    message: {
      id: notice.id, author: { id: state.info.bot.id, bot: true }, content: "", timestamp: notice.timestamp,
      flags: FLAG_EPHEMERAL, embeds: [], attachments: [], components: [], mentions: [],
    },
    notice: notice.text,
  };
  return renderMessage(fake);
}

function renderAll() {
  const container = $("messages");
  const nearBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 80;
  container.replaceChildren();
  const entries = [...state.items.values()].filter(visible).map((item) => ({ key: BigInt(item.message.id), node: () => renderMessage(item) }));
  for (const notice of state.notices) {
    if (notice.userId === state.userId && notice.channelId === state.channelId) entries.push({ key: BigInt(notice.id), node: () => renderNotice(notice) });
  }
  entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (!entries.length) container.append(el("p", { class: "empty" }, "No messages yet. Run a command below."));
  for (const entry of entries) container.append(entry.node());
  if (nearBottom) container.scrollTop = container.scrollHeight;
}

// actions ----------------------------------------------------------------------------------

async function clickButton(message, customId, button) {
  button.classList.add("pending");
  button.disabled = true;
  try {
    const result = await api("/sandbox/click", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message_id: message.id, custom_id: customId, user_id: state.userId }),
    });
    state.pendingClicks.set(result.interaction_id, button);
  } catch (error) {
    button.classList.remove("pending");
    button.disabled = false;
    setStatus(error.message, true);
  }
}

function setStatus(text, isError) {
  const status = $("composer-status");
  status.textContent = text;
  status.classList.toggle("error", !!isError);
}

function currentCommand() {
  return state.commands.find((c) => c.name === $("command-select").value);
}

function optionInput(option) {
  const id = `option-${option.name}`;
  const required = !!option.required;
  let input;
  const choices = option.choices || [];
  const blank = required ? null : el("option", { value: "" }, "—");
  if (option.type === OPTION.ATTACHMENT) {
    input = el("input", { type: "file", id, name: `file:${option.name}`, required });
  } else if (choices.length) {
    input = el("select", { id, required }, blank, choices.map((c) => el("option", { value: String(c.value) }, c.name)));
  } else if (option.type === OPTION.STRING) {
    const long = !option.max_length || option.max_length > 200;
    input = long
      ? el("textarea", { id, rows: 2, required, maxlength: option.max_length, minlength: option.min_length })
      : el("input", { type: "text", id, required, maxlength: option.max_length, minlength: option.min_length });
  } else if (option.type === OPTION.INTEGER || option.type === OPTION.NUMBER) {
    input = el("input", { type: "number", id, required, min: option.min_value, max: option.max_value, step: option.type === OPTION.INTEGER ? 1 : "any" });
  } else if (option.type === OPTION.BOOLEAN) {
    input = el("select", { id, required }, blank, el("option", { value: "true" }, "True"), el("option", { value: "false" }, "False"));
  } else if (option.type === OPTION.USER || option.type === OPTION.MENTIONABLE) {
    const users = Object.entries(state.info.users).filter(([, u]) => !u.bot);
    input = el("select", { id, required }, blank, users.map(([uid, u]) => el("option", { value: uid }, u.name)));
  } else if (option.type === OPTION.CHANNEL) {
    input = el("select", { id, required }, blank, state.info.channels.map((c) => el("option", { value: c.id }, `#${c.name}`)));
  } else if (option.type === OPTION.ROLE) {
    const roles = Object.entries(state.info.roles).filter(([, r]) => r.name !== "@everyone");
    input = el("select", { id, required }, blank, roles.map(([rid, r]) => el("option", { value: rid }, r.name)));
  } else {
    input = el("input", { type: "text", id, disabled: true, placeholder: "not supported here" });
  }
  input.dataset.option = option.name;
  input.dataset.type = String(option.type);
  const wide = option.type === OPTION.STRING && !choices.length && (!option.max_length || option.max_length > 200);
  return el("div", { class: wide ? "option wide" : "option" },
    el("label", { class: "field-label", for: id }, option.name, required ? el("span", { class: "required" }, " *") : null),
    input,
    option.description ? el("small", {}, option.description) : null);
}

function renderOptions() {
  const command = currentCommand();
  $("command-description").textContent = command ? command.description : "No command available: the bot has not registered one you may use here.";
  $("options").replaceChildren(...(command ? command.options.map(optionInput) : []));
  $("send").disabled = !command;
}

function collectOptions(form) {
  const values = {};
  for (const input of form.querySelectorAll("[data-option]")) {
    const type = Number(input.dataset.type);
    if (type === OPTION.ATTACHMENT || input.disabled) continue;
    const raw = input.value;
    if (raw === "") continue;
    if (type === OPTION.INTEGER) values[input.dataset.option] = parseInt(raw, 10);
    else if (type === OPTION.NUMBER) values[input.dataset.option] = parseFloat(raw);
    else if (type === OPTION.BOOLEAN) values[input.dataset.option] = raw === "true";
    else values[input.dataset.option] = raw;
  }
  return values;
}

async function submitCommand(event) {
  event.preventDefault();
  const command = currentCommand();
  if (!command) return;
  if (command === POST_MESSAGE) {
    $("send").disabled = true;
    try {
      await postMessage();
      setStatus(`Message posted as ${userName(state.userId)}.`);
    } catch (error) {
      setStatus(error.message, true);
    } finally {
      $("send").disabled = false;
    }
    return;
  }
  const form = $("composer");
  const data = new FormData();
  data.append("command", command.name);
  data.append("user_id", state.userId);
  data.append("channel_id", state.channelId);
  data.append("options", JSON.stringify(collectOptions(form)));
  for (const input of form.querySelectorAll('input[type="file"]')) {
    if (input.files.length) data.append(input.name, input.files[0], input.files[0].name);
  }
  $("send").disabled = true;
  setStatus(`Sending /${command.name} as ${userName(state.userId)}…`);
  try {
    await api("/sandbox/invoke", { method: "POST", body: data });
    setStatus(`/${command.name} sent as ${userName(state.userId)}.`);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    $("send").disabled = false;
  }
}

// loading and live updates -----------------------------------------------------------------

async function loadCommands() {
  const answer = await api(`/sandbox/commands?channel_id=${state.channelId}&user_id=${state.userId}`);
  const commands = [...answer.commands, POST_MESSAGE];
  const select = $("command-select");
  const previous = select.value;
  state.commands = commands;
  state.messageCommands = answer.message_commands || [];
  state.messageCommandLabels = answer.message_command_labels || {};
  select.replaceChildren(...commands.map((c) => el("option", { value: c.name }, c.label || `/${c.name}`)));
  if (commands.some((c) => c.name === previous)) select.value = previous;
  else if (commands.length) select.value = commands[0].name;
  renderOptions();
}

async function loadMessages() {
  const { items } = await api(`/sandbox/messages?channel_id=${state.channelId}&user_id=${state.userId}`);
  state.items = new Map(items.map((item) => [item.message.id, item]));
  renderAll();
}

function setBotStatus(online) {
  state.botOnline = online;
  const status = $("bot-status");
  status.textContent = online ? `${state.info.bot.name} is online` : `${state.info.bot.name} is offline`;
  status.className = `bot-status ${online ? "online" : "offline"}`;
}

function handleEvent(event) {
  switch (event.type) {
    case "message_create":
    case "message_update": {
      if (event.channel_id !== state.channelId) return;
      const item = { message: event.data.message, visible_to: event.visible_to };
      if (!visible(item)) return;
      state.items.set(item.message.id, item);
      renderAll();
      break;
    }
    case "message_delete":
      if (state.items.delete(event.data.id)) renderAll();
      break;
    case "interaction_response":
    case "interaction_failed": {
      if (event.type === "interaction_response") maybeOpenModal(event.data);
      const button = state.pendingClicks.get(event.data.id);
      if (button) {
        state.pendingClicks.delete(event.data.id);
        button.classList.remove("pending");
        button.disabled = false;
      }
      if (event.type === "interaction_failed") {
        const what = event.data.name ? `/${event.data.name}` : "That button";
        state.notices.push({
          id: event.data.id, userId: event.data.user_id, channelId: event.channel_id,
          timestamp: new Date().toISOString(),
          text: `The application did not respond (${what} was not acknowledged within ${state.info.ack_deadline} s).`,
        });
        renderAll();
      }
      break;
    }
    case "commands_synced":
      loadCommands().catch((error) => setStatus(error.message, true));
      break;
    case "bot_status":
      setBotStatus(event.data.connected);
      break;
    default:
      break;
  }
}

function connectEvents(delay) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/sandbox/events`);
  socket.addEventListener("open", () => {
    delay = 1000;
    loadMessages().catch((error) => setStatus(error.message, true));
  });
  socket.addEventListener("message", (msg) => handleEvent(JSON.parse(msg.data)));
  socket.addEventListener("close", () => {
    setTimeout(() => connectEvents(Math.min(delay * 2, 10000)), delay);
  });
}

function selectChannel(channelId) {
  state.channelId = channelId;
  const channel = state.info.channels.find((c) => c.id === channelId);
  $("channel-name").textContent = channel ? channel.name : "?";
  $("channel-topic").textContent = channel && channel.topic ? channel.topic : "";
  for (const link of document.querySelectorAll(".channel-link")) link.classList.toggle("active", link.dataset.id === channelId);
  loadMessages().catch((error) => setStatus(error.message, true));
}

// languages: the acting person's Discord client language, and the server's ------------------

function showLanguages() {
  const person = state.info.people.find((p) => p.id === state.userId);
  $("member-locale").value = person ? person.locale : "en-US";
  $("guild-locale").value = state.info.guild_locale;
}

async function setLanguage(change) {
  try {
    await api("/sandbox/locale", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(change),
    });
    state.info = await api("/sandbox/info");
    showLanguages();
    await loadCommands();
    setStatus(change.guild_locale ? `The server's language is now ${change.guild_locale}.`
      : `${userName(state.userId)}'s Discord language is now ${change.locale}.`);
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function init() {
  state.info = await api("/sandbox/info");
  document.title = `${state.info.guild.name} — sandbox`;
  $("guild-name").textContent = state.info.guild.name;
  $("channels").replaceChildren(...state.info.channels.map((c) =>
    el("button", { class: "channel-link", type: "button", "data-id": c.id, onclick: () => selectChannel(c.id) }, c.name)));

  const saved = localStorage.getItem("sandbox-user");
  const people = state.info.people;
  state.userId = people.some((p) => p.id === saved) ? saved : people[0].id;
  const switcher = $("user-switch");
  switcher.replaceChildren(...people.map((p) => el("option", { value: p.id }, `${p.name} — ${p.label}`)));
  switcher.value = state.userId;
  switcher.addEventListener("change", () => {
    state.userId = switcher.value;
    localStorage.setItem("sandbox-user", state.userId);
    showLanguages();
    loadMessages().catch((error) => setStatus(error.message, true));
    loadCommands().catch((error) => setStatus(error.message, true));
  });
  const localeOptions = () => state.info.locales.map((code) => el("option", { value: code }, code));
  $("member-locale").replaceChildren(...localeOptions());
  $("guild-locale").replaceChildren(...localeOptions());
  $("member-locale").addEventListener("change", () => setLanguage({ user_id: state.userId, locale: $("member-locale").value }));
  $("guild-locale").addEventListener("change", () => setLanguage({ guild_locale: $("guild-locale").value }));
  showLanguages();

  setBotStatus(state.info.bot_connected);
  $("command-select").addEventListener("change", renderOptions);
  $("composer").addEventListener("submit", submitCommand);
  selectChannel(state.info.default_channel_id);
  await loadCommands();
  connectEvents(1000);
}

// After every script of the page (forms.js adds the menu and the forms) has run.
document.addEventListener("DOMContentLoaded", () => {
  init().catch((error) => setStatus(`Could not load the sandbox: ${error.message}`, true));
});
