// The sandbox pages: poll the control API and render a chat the way Telegram would.
const API = "/sandbox/api";

async function api(path, body) {
  const init = body === undefined ? {} : body instanceof FormData
    ? { method: "POST", body } : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(API + path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function element(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function toast(text) {
  const note = element("div", { class: "toast", "data-testid": "toast" }, text);
  document.body.append(note);
  setTimeout(() => note.remove(), 2500);
}

// Bold, italic, code and links from message entities (offsets are UTF-16, as in JS strings).
function renderText(text, entities = []) {
  const out = document.createDocumentFragment();
  let cursor = 0;
  for (const entity of [...entities].sort((a, b) => a.offset - b.offset)) {
    if (entity.offset < cursor) continue;
    out.append(text.slice(cursor, entity.offset));
    const part = text.slice(entity.offset, entity.offset + entity.length);
    const tag = { bold: "b", italic: "i", code: "code", pre: "pre", underline: "u", strikethrough: "s",
                  text_link: "a", url: "a" }[entity.type];
    out.append(tag ? element(tag, tag === "a" ? { href: entity.url || part, target: "_blank" } : {}, part) : part);
    cursor = entity.offset + entity.length;
  }
  out.append(text.slice(cursor));
  return out;
}

// What a topic service message says (Telegram shows these as centred grey lines).
function serviceText(message) {
  if (message.forum_topic_created) return `Topic created: ${message.forum_topic_created.name}`;
  if (message.forum_topic_edited) {
    const edit = message.forum_topic_edited;
    return edit.name ? `Topic renamed: ${edit.name}` : "Topic icon changed";
  }
  if (message.forum_topic_closed) return "Topic closed";
  if (message.forum_topic_reopened) return "Topic reopened";
  if (message.pinned_message) return "Message pinned";
  return "Service message";
}

function emptyHint(...lines) {
  return element("div", { class: "empty", "data-testid": "empty-hint" }, ...lines.map((line) => element("p", {}, line)));
}

class ChatView {
  constructor({ mode }) {
    this.mode = mode;
    this.chatId = null;
    this.threadId = null;
    this.rev = 0;
    this.nodes = new Map();
    this.business = null;  // a business connection id: the customer writes to the brand's account
    this.connections = [];
    document.getElementById("composer").addEventListener("submit", (event) => this.send(event));
  }

  // Telegram Business: the customer may write to the bot or to the brand's own account.
  async loadBusiness() {
    this.connections = (await api("/business")).connections;
    const picker = document.getElementById("talk-to");
    const options = [element("option", { value: "" }, "the bot itself"),
      ...this.connections.filter((c) => c.is_enabled || c.id === this.business).map((c) =>
        element("option", { value: c.id }, c.user.first_name + (c.is_enabled ? "" : " (disconnected)")))];
    picker.replaceChildren(...options);
    picker.value = this.business || "";
    const current = this.connections.find((c) => c.id === this.business);
    document.getElementById("as-owner-box").hidden = !current;
    document.getElementById("business-toggle").textContent = current && current.is_enabled
      ? "Disconnect the bot from this account" : "Connect a business account";
  }

  chatPath() {
    return this.business ? `/business/${this.business}/chats/${this.chatId}` : `/users/${this.chatId}`;
  }

  async toggleBusiness() {
    const current = this.connections.find((c) => c.id === this.business);
    if (current && current.is_enabled) await api(`/business/${current.id}/disconnect`, {});
    else {
      const { connection } = await api("/business", current ? { owner_id: current.user.id } : {});
      this.business = connection.id;
    }
    await this.loadBusiness();
    this.select(this.chatId);
  }

  async start() {
    if (this.mode === "customer") {
      document.getElementById("new-person").addEventListener("submit", (event) => this.addPerson(event));
      document.getElementById("talk-to").addEventListener("change", (event) => {
        this.business = event.target.value || null;
        this.loadBusiness();
        this.select(this.chatId);
      });
      document.getElementById("business-toggle").addEventListener("click", () => this.toggleBusiness().catch((e) => toast(e.message)));
      await this.loadBusiness();
      await this.loadPeople();
    } else {
      document.getElementById("new-group").addEventListener("submit", (event) => this.addGroup(event));
      await this.loadGroups();
    }
    setInterval(() => this.poll().catch(() => {}), 700);
  }

  select(chatId, threadId = null) {
    this.chatId = chatId;
    this.threadId = threadId;
    if (this.mode === "customer") localStorage.setItem("sandbox-customer", String(chatId));
    this.rev = 0;
    this.nodes.clear();
    document.getElementById("messages").replaceChildren();
    this.showHint();
    this.mode === "customer" ? this.loadPeople() : this.loadGroups();
  }

  // A first screen that says what to do, until the chat has messages.
  showHint() {
    const box = document.getElementById("messages");
    box.querySelector(".empty")?.remove();
    if (this.nodes.size) return;
    if (this.mode === "customer") {
      box.append(this.chatId === null
        ? emptyHint("Pick a customer on the left, or add one (a first name and a language).",
                    "Then say /start, as a new customer would in Telegram.")
        : emptyHint("Say /start (or just hello) to begin.", "\"Talk to a person\" in the menu hands the chat to the staff group."));
    } else {
      box.append(this.chatId === null
        ? emptyHint("No staff group yet.", "Create one on the left, with the bot as an admin.")
        : emptyHint(this.threadId === null
          ? "Each customer who asks for a person gets a topic here: pick it on the left to reply."
          : "No messages in this topic yet."));
    }
  }

  async loadPeople() {
    const users = (await api("/users")).users.filter((user) => !user.is_staff && !user.is_business_owner);
    const list = document.getElementById("people");
    list.replaceChildren(...users.map((user) => element("button", {
      class: "pick" + (user.id === this.chatId ? " active" : ""), "data-testid": `person-${user.id}`,
      onclick: () => this.select(user.id),
    }, `${user.first_name} (${user.language_code})`)));
    if (this.chatId === null) {
      const last = parseInt(localStorage.getItem("sandbox-customer") || "", 10);
      const found = users.find((user) => user.id === last);
      if (found) this.select(found.id); else this.showHint();
    }
  }

  async addPerson(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const { user } = await api("/users", Object.fromEntries(form));
    event.target.reset();
    this.select(user.id);
  }

  async loadGroups() {
    const { groups } = await api("/groups");
    document.getElementById("groups").replaceChildren(...groups.map((group) => element("button", {
      class: "pick" + (group.chat.id === this.chatId && this.threadId === null ? " active" : ""),
      "data-testid": `group-${group.chat.id}`, onclick: () => this.select(group.chat.id),
    }, group.chat.title)));
    const current = groups.find((group) => group.chat.id === this.chatId) || groups[0];
    if (!current) { this.showHint(); return; }
    if (this.chatId === null) { this.select(current.chat.id); return; }
    this.renderStaffPicker(current.members);
    document.getElementById("topics").replaceChildren(...current.topics.map((topic) => element("button", {
      class: "pick" + (topic.message_thread_id === this.threadId ? " active" : ""),
      "data-testid": `topic-${topic.message_thread_id}`,
      onclick: () => this.select(current.chat.id, topic.message_thread_id),
    }, (topic.is_closed ? "🔒 " : "") + topic.name)));
  }

  renderStaffPicker(members) {
    const picker = document.getElementById("staff-user");
    const people = members.filter((member) => !member.user.is_bot);
    const key = people.map((member) => member.user.id).join(",");
    if (!people.length || picker.dataset.members === key) return;
    const chosen = picker.value;
    picker.replaceChildren(...people.map((member) => element("option", { value: member.user.id },
      `${member.user.first_name} (${member.status}, ${member.user.id})`)));
    if (people.some((member) => String(member.user.id) === chosen)) picker.value = chosen;
    picker.dataset.members = key;
  }

  async addGroup(event) {
    event.preventDefault();
    const form = Object.fromEntries(new FormData(event.target));
    const admins = form.admins.split(",").map((id) => parseInt(id, 10)).filter(Boolean);
    await api("/groups", { chat_id: parseInt(form.chat_id, 10), title: form.title, admins });
    this.select(parseInt(form.chat_id, 10));
  }

  async poll() {
    if (this.chatId === null) return;
    const thread = this.threadId === null ? "" : `&thread_id=${this.threadId}`;
    const data = this.mode === "customer" && this.business
      ? await api(`${this.chatPath()}/messages?since=${this.rev}`)
      : await api(`/chats/${this.chatId}/messages?since=${this.rev}${thread}`);
    for (const message of data.messages) this.render(message);
    if (data.messages.length) this.showHint();
    for (const answer of data.callback_answers) if (answer.text) toast(answer.text);
    if (this.mode === "customer") this.renderReplyKeyboard(data.reply_keyboard);
    else if (data.messages.length) this.loadGroups();
    if (data.messages.length) {
      const box = document.getElementById("messages");
      box.scrollTop = box.scrollHeight;
    }
    this.rev = data.rev;
  }

  render(message) {
    const old = this.nodes.get(message.message_id);
    if (message._deleted) { old?.remove(); this.nodes.delete(message.message_id); return; }
    const mine = this.mode === "customer" ? !message._from_bot && message.from?.id === this.chatId
      : message.from && !message.from.is_bot;
    const node = element("div", { class: "msg" + (mine ? " mine" : "") + (message._service ? " service-msg" : ""),
                                  "data-testid": "message",
                                  "data-message-id": message.message_id, "data-from-bot": message._from_bot });
    if (this.mode === "staff" && message.from && !message._service) node.append(element("div", { class: "meta" }, message.from.first_name));
    if (this.business && !mine) node.append(element("div", { class: "meta" }, message.from.first_name
      + (message.sender_business_bot ? ` · via @${message.sender_business_bot.username}` : " · the owner, in person")));
    const photo = message.photo && message.photo[message.photo.length - 1];
    if (photo) node.append(element("img", { src: `${API}/files/${photo.file_id}`, alt: "photo" }));
    if (message.document) node.append(element("div", {}, `📄 ${message.document.file_name || "document"}`));
    if (message.voice) node.append(element("div", {}, "🎤 voice message"));
    if (message.sticker) node.append(element("div", {}, message.sticker.emoji || "sticker"));
    if (message.contact) node.append(element("div", {}, `📞 ${message.contact.phone_number}`));
    if (message._service) node.append(element("div", { class: "service" }, serviceText(message)));
    const text = message.text ?? message.caption;
    if (text) node.append(element("div", { "data-testid": "message-text" },
                                  renderText(text, message.entities || message.caption_entities)));
    if (message._edits) node.append(element("div", { class: "meta" }, "edited"));
    const keyboard = message.reply_markup?.inline_keyboard;
    if (keyboard) node.append(this.inlineKeyboard(message, keyboard));
    if (old) old.replaceWith(node); else document.getElementById("messages").append(node);
    this.nodes.set(message.message_id, node);
  }

  inlineKeyboard(message, rows) {
    return element("div", { class: "inline-keyboard" }, ...rows.map((row) => element("div", { class: "row" },
      ...row.map((button) => element("button", {
        "data-testid": "inline-button",
        onclick: () => button.url ? window.open(button.url, "_blank") : this.press(message, button.callback_data),
      }, button.text)))));
  }

  renderReplyKeyboard(keyboard) {
    const box = document.getElementById("reply-keyboard");
    box.hidden = !keyboard;
    if (!keyboard) { box.replaceChildren(); return; }
    box.replaceChildren(...keyboard.keyboard.map((row) => element("div", { class: "row" },
      ...row.map((button) => element("button", {
        "data-testid": "reply-button", onclick: () => this.replyButton(button),
      }, button.text)))));
  }

  async replyButton(button) {
    if (button.request_contact) {
      const phone = prompt("Share your phone number", "+49 30 1234567");
      if (phone) await api(`/users/${this.chatId}/contact`, { phone_number: phone });
    } else {
      await api(`/users/${this.chatId}/text`, { text: button.text });
    }
  }

  async press(message, data) {
    if (this.mode === "customer") await api(`${this.chatPath()}/press`, { message_id: message.message_id, data });
    else {
      const userId = parseInt(document.getElementById("staff-user").value, 10);
      try {
        await api(`/users/${userId}/press`, { message_id: message.message_id, data, chat_id: this.chatId });
      } catch (error) { toast(error.message); }
    }
  }

  async send(event) {
    event.preventDefault();
    const form = event.target;
    const text = form.text.value.trim();
    const file = form.photo.files[0];
    try {
      if (this.mode === "customer") {
        if (file && this.business) toast("In the sandbox, photos go to the bot's own chat only.");
        else if (file) {
          const body = new FormData(); body.append("photo", file); if (text) body.append("caption", text);
          await api(`/users/${this.chatId}/photo`, body);
        } else if (text && this.business) {
          await api(`${this.chatPath()}/text`, { text, as_owner: document.getElementById("as-owner").checked });
        } else if (text) await api(`/users/${this.chatId}/text`, { text });
      } else {
        const userId = parseInt(document.getElementById("staff-user").value, 10);
        if (file) {
          const body = new FormData();
          body.append("photo", file); body.append("user_id", userId);
          if (text) body.append("caption", text);
          if (this.threadId !== null) body.append("message_thread_id", this.threadId);
          await api(`/groups/${this.chatId}/photo`, body);
        } else if (text) {
          await api(`/groups/${this.chatId}/post`, { user_id: userId, text, message_thread_id: this.threadId });
        }
      }
      form.reset();
    } catch (error) {
      toast(error.message);
    }
  }
}
