// The chat page: streams answers from /v1/chat/completions with the clinician's key.
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
      body: JSON.stringify({ model: state.model, messages: state.history, stream: true }),
      signal: state.controller.signal,
    });
    if (!response.ok) throw new Error(await apiError(response));
    await readStream(response, answer);
    state.history.push({ role: "assistant", content: answer.textContent });
    answer.dataset.state = "done";
  } catch (error) {
    answer.dataset.state = "error";
    $("status").textContent = error.name === "AbortError" ? "Stopped." : "Request failed: " + error.message;
  } finally {
    $("send").disabled = false;
    $("stop").disabled = true;
    state.controller = null;
  }
}

async function readStream(response, target) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 2);
      if (!line.startsWith("data: ")) continue;
      const data = line.slice(6);
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      for (const choice of chunk.choices || []) {
        if (choice.delta && choice.delta.content) target.textContent += choice.delta.content;
      }
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = sessionStorage.getItem("apiKey") || "";
  $("ask").addEventListener("submit", send);
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("ask").requestSubmit();
  });
});
