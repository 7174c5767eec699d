// The playground: chat through the server's own /v1/chat/completions with stream: true,
// reading the SSE as it arrives and showing tokens per second.
"use strict";

(function () {
  const form = document.getElementById("playground");
  if (!form) return;
  const transcript = document.getElementById("transcript");
  const stats = document.getElementById("stats");
  const send = document.getElementById("send");
  const stop = document.getElementById("stop");
  const keyInput = document.getElementById("api-key");
  const temperatureInput = document.getElementById("temperature");
  let history = [];
  let controller = null;

  if (keyInput) {
    keyInput.value = sessionStorage.getItem("herd-api-key") || "";
    keyInput.addEventListener("change", () => sessionStorage.setItem("herd-api-key", keyInput.value));
  }

  function bubble(role, text) {
    const item = document.createElement("div");
    item.className = "turn " + role;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role;
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    item.append(who, body);
    transcript.append(item);
    return body;
  }

  function showStats(tokens, firstAt, lastAt, startedAt, done) {
    const seconds = (lastAt - firstAt) / 1000;
    // The first token ends the wait; the rate counts the tokens after it.
    const rate = tokens > 1 && seconds > 0 ? (tokens - 1) / seconds : 0;
    stats.dataset.tokens = String(tokens);
    stats.dataset.rate = rate.toFixed(1);
    const ttft = firstAt ? ((firstAt - startedAt) / 1000).toFixed(2) + " s to first token · " : "";
    stats.textContent = ttft + tokens + " tokens · " + rate.toFixed(1) + " tokens/s" + (done ? "" : " …");
  }

  async function chat(message) {
    history.push({ role: "user", content: message });
    bubble("user", message);
    const answer = bubble("assistant", "");
    answer.classList.add("streaming");
    const messages = [];
    const system = document.getElementById("system").value.trim();
    if (system) messages.push({ role: "system", content: system });
    messages.push(...history);
    const headers = { "Content-Type": "application/json" };
    if (keyInput && keyInput.value) headers["Authorization"] = "Bearer " + keyInput.value;
    controller = new AbortController();
    const startedAt = performance.now();
    let firstAt = 0, lastAt = 0, tokens = 0, usageTokens = null;
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers,
      signal: controller.signal,
      body: JSON.stringify({
        model: document.getElementById("model").value,
        messages,
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: Number(document.getElementById("max-tokens").value) || undefined,
        // Empty: the model's own default (its record's options), as any client gets it.
        temperature: temperatureInput.value === "" ? undefined : Number(temperatureInput.value),
      }),
    });
    if (!response.ok) {
      let detail = response.status + " " + response.statusText;
      try { detail = (await response.json()).error.message || detail; } catch (e) { /* not JSON */ }
      throw new Error(detail);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message || "error");
          if (chunk.usage) usageTokens = chunk.usage.completion_tokens;
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          if (delta && delta.content) {
            const now = performance.now();
            if (!firstAt) firstAt = now;
            lastAt = now;
            tokens += 1;
            answer.textContent += delta.content;
            showStats(tokens, firstAt, lastAt, startedAt, false);
          }
        }
      }
    }
    // The server's own count, when it sent one, is the true number of tokens.
    showStats(usageTokens ?? tokens, firstAt, lastAt, startedAt, true);
    answer.classList.remove("streaming");
    history.push({ role: "assistant", content: answer.textContent });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("message");
    const message = input.value.trim();
    if (!message) return;
    input.value = "";
    send.disabled = true;
    stop.disabled = false;
    try {
      await chat(message);
    } catch (error) {
      if (error.name !== "AbortError") bubble("error", String(error.message || error));
    } finally {
      send.disabled = false;
      stop.disabled = true;
      controller = null;
    }
  });
  stop.addEventListener("click", () => controller && controller.abort());
  document.getElementById("clear").addEventListener("click", () => {
    history = [];
    transcript.replaceChildren();
    stats.textContent = "";
  });
})();
