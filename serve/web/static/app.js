// The chat page: streams answers from /v1/chat/completions with the clinician's key, grounded in
// the hospital's knowledge base when the server has one, and lists the passages each answer cites.
// Everything stays in this tab: the key in sessionStorage, the conversation in memory.
"use strict";

const state = { model: null, history: [], controller: null };
const $ = (id) => document.getElementById(id);

function key() { return $("api-key").value.trim(); }

function addMessage(role, text) {
  const item = document.createElement("li");
  item.className = role;
  item.textContent = text;
  $("messages").appendChild(item);
  return item;
}

async function apiError(response) {
  try {
    const body = await response.json();
    return (body.error && body.error.message) || response.statusText;
  } catch (_) {
    return response.statusText;
  }
}

async function loadModel() {
  const response = await fetch("/v1/models", { headers: { Authorization: "Bearer " + key() } });
  if (!response.ok) throw new Error(await apiError(response));
  const body = await response.json();
  state.model = body.data[0].id;
  $("model").textContent = state.model;
}

async function send(event) {
  event.preventDefault();
  const text = $("prompt").value.trim();
  if (!text) return;
  $("status").textContent = "";
  sessionStorage.setItem("apiKey", key());
  try {
    if (!state.model) await loadModel();
  } catch (error) {
    $("status").textContent = "Cannot use this key: " + error.message;
    return;
  }
  state.history.push({ role: "user", content: text });
  addMessage("user", text);
  $("prompt").value = "";
  const answer = addMessage("assistant", "");
  answer.dataset.state = "streaming";
  state.controller = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + key() },
      body: JSON.stringify({ model: state.model, messages: state.history, stream: true, grounded: true }),
      signal: state.controller.signal,
    });
    if (!response.ok) throw new Error(await apiError(response));
    const citations = await readStream(response, answer);
    state.history.push({ role: "assistant", content: answer.textContent });
    if (citations.length) showCitations(citations);
    answer.dataset.state = "done";
    if (answer.dataset.responseId) addRating(answer.dataset.responseId);
  } catch (error) {
    answer.dataset.state = "error";
    $("status").textContent = error.name === "AbortError" ? "Stopped." : "Request failed: " + error.message;
  } finally {
    $("send").disabled = false;
    $("stop").disabled = true;
    state.controller = null;
  }
}

// Returns the citations the server sent on the first chunk (none when the answer is not grounded).
async function readStream(response, target) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let citations = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return citations;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 2);
      if (!line.startsWith("data: ")) continue;
      const data = line.slice(6);
      if (data === "[DONE]") return citations;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.citations) citations = chunk.citations;
      if (chunk.id && !target.dataset.responseId) target.dataset.responseId = chunk.id;
      for (const choice of chunk.choices || []) {
        if (choice.delta && choice.delta.content) target.textContent += choice.delta.content;
      }
    }
  }
}

// Passage URLs need the API key, so a citation is a link the page follows itself (fetch with the
// Authorization header) and shows the passage under it; opening it as a plain URL would be a 401.
function showCitations(citations) {
  const item = document.createElement("li");
  item.className = "sources";
  const list = document.createElement("ul");
  for (const citation of citations) {
    const entry = document.createElement("li");
    const link = document.createElement("a");
    link.className = "citation";
    link.href = "#passage-" + citation.chunk_id;
    link.dataset.href = citation.href;
    link.textContent = "[" + citation.number + "] " + citation.title + (citation.section ? " - " + citation.section : "");
    link.addEventListener("click", (event) => { event.preventDefault(); togglePassage(entry, link); });
    const source = document.createElement("span");
    source.className = "source";
    source.textContent = citation.source;
    entry.append(link, " ", source);
    list.appendChild(entry);
  }
  item.appendChild(list);
  $("messages").appendChild(item);
}

async function togglePassage(entry, link) {
  const shown = entry.querySelector(".passage");
  if (shown) { shown.remove(); return; }
  const passage = document.createElement("blockquote");
  passage.className = "passage";
  passage.id = link.hash.slice(1);
  passage.textContent = "Loading the passage…";
  entry.appendChild(passage);
  try {
    const response = await fetch(link.dataset.href, { headers: { Authorization: "Bearer " + key() } });
    if (!response.ok) throw new Error(await apiError(response));
    passage.textContent = (await response.json()).text;
    passage.dataset.state = "done";
  } catch (error) {
    passage.textContent = "Cannot show this passage: " + error.message;
    passage.dataset.state = "error";
  }
}

// Thumbs under an answer: POST /v1/feedback. A thumbs-down may carry the answer the clinician would
// have given; the server keeps it only de-identified and turns ratings into training preferences.
function addRating(responseId) {
  const item = document.createElement("li");
  item.className = "rating";
  const up = document.createElement("button");
  up.type = "button"; up.className = "thumb"; up.textContent = "\u{1F44D}"; up.title = "Good answer";
  const down = document.createElement("button");
  down.type = "button"; down.className = "thumb"; down.textContent = "\u{1F44E}"; down.title = "Poor answer";
  const note = document.createElement("span");
  note.className = "rating-note";
  const correction = document.createElement("form");
  correction.className = "correction";
  correction.hidden = true;
  const better = document.createElement("textarea");
  better.rows = 2; better.placeholder = "What you would have answered (optional)";
  const submit = document.createElement("button");
  submit.type = "submit"; submit.textContent = "Send rating";
  correction.append(better, submit);
  const rate = async (rating, text) => {
    up.disabled = down.disabled = submit.disabled = true;
    const body = { response_id: responseId, rating };
    if (text) body.correction = text;
    try {
      const response = await fetch("/v1/feedback", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + key() },
        body: JSON.stringify(body),
      });
      if (!response.ok) throw new Error(await apiError(response));
      correction.hidden = true;
      note.textContent = "Thank you: rating recorded.";
      item.dataset.state = "done";
    } catch (error) {
      up.disabled = down.disabled = submit.disabled = false;
      note.textContent = "Rating not recorded: " + error.message;
      item.dataset.state = "error";
    }
  };
  up.addEventListener("click", () => rate("up", ""));
  down.addEventListener("click", () => { correction.hidden = false; better.focus(); });
  correction.addEventListener("submit", (event) => { event.preventDefault(); rate("down", better.value.trim()); });
  item.append(up, down, note, correction);
  $("messages").appendChild(item);
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = sessionStorage.getItem("apiKey") || "";
  $("ask").addEventListener("submit", send);
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("ask").requestSubmit();
  });
});
