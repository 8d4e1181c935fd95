// Live updates without a reload: new transcript lines on a conversation, the inbox list.
"use strict";

async function pollTranscript(list) {
  const response = await fetch(`${list.dataset.feed}?after=${list.dataset.lastId}`, { credentials: "same-origin" });
  if (!response.ok) return;
  const data = await response.json();
  if (data.html.trim()) {
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 20;
    list.insertAdjacentHTML("beforeend", data.html);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }
  list.dataset.lastId = data.last_id;
}

async function refreshInbox(box) {
  const response = await fetch(box.dataset.refresh, { credentials: "same-origin" });
  if (response.ok) {
    const html = await response.text();
    if (html !== box.innerHTML) box.innerHTML = html;
  }
}

// A form with data-confirm asks first (pausing a journey, closing a conversation).
document.addEventListener("submit", (event) => {
  const question = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (question && !window.confirm(question)) event.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => {
  const transcript = document.getElementById("transcript");
  if (transcript) {
    transcript.scrollTop = transcript.scrollHeight;
    setInterval(() => pollTranscript(transcript).catch(() => {}), 1500);
  }
  const inbox = document.getElementById("inbox-list");
  if (inbox) setInterval(() => refreshInbox(inbox).catch(() => {}), 5000);
});
