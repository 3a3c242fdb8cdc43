// The gptlab serve page: ask several stages the same prompt side by side, rate and rank the
// answers, and explore next-token probabilities and attention. Everything the model writes is
// put on the page as text (textContent), never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let apiKey = sessionStorage.getItem("gptlab-api-key") || "";
let stages = [];

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function status(text, isError) {
  $("status").textContent = text;
  $("status").classList.toggle("error", !!isError);
}

// A /v1 request; on 401 the page asks for the key once and keeps it for the session.
async function api(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (apiKey) headers["Authorization"] = "Bearer " + apiKey;
  const res = await fetch("/v1" + path, body === undefined ? { headers } :
    { method: "POST", headers, body: JSON.stringify(body) });
  if (res.status === 401) {
    $("key-form").hidden = false;
    throw new Error("this server needs an API key");
  }
  if (!res.ok) {
    const err = await res.json().catch(() => ({}));
    throw new Error((err.error && err.error.message) || res.statusText);
  }
  return res;
}

function sampling() {
  const num = (id) => ($(id).value === "" ? undefined : Number($(id).value));
  return { temperature: num("temperature"), top_k: num("top_k"), top_p: num("top_p"),
           max_tokens: num("max_tokens"), seed: num("seed") };
}

async function loadStages() {
  const res = await api("/models");
  stages = (await res.json()).data;
  const box = $("stages");
  box.querySelectorAll("label").forEach((l) => l.remove());
  $("explore-stage").replaceChildren();
  stages.forEach((s, i) => {
    const label = el("label");
    const check = el("input");
    check.type = "checkbox";
    check.id = "stage-" + s.id;
    check.value = s.id;
    check.checked = i < 2;
    label.append(check, " " + s.id + " ", el("span", "kind", "(" + s.kind + ")"));
    box.append(label);
    const opt = el("option", "", s.id);
    opt.value = s.id;
    $("explore-stage").append(opt);
  });
  status("run serves " + stages.map((s) => s.id).join(", "));
}

// Reads an SSE stream of OpenAI chunks, calling onText(index, text) and onFinish(index).
async function readStream(res, onText, onFinish) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (!data || data === "[DONE]") continue;
      for (const c of JSON.parse(data).choices) {
        if (c.delta && c.delta.content) onText(c.index, c.delta.content);
        if (c.finish_reason) onFinish(c.index);
      }
    }
  }
}

function rateButtons(card, stage, messages, settings) {
  const box = el("span", "rate");
  for (const [label, good] of [["👍 good", true], ["👎 bad", false]]) {
    const b = el("button", good ? "up" : "down", label);
    b.type = "button";
    b.title = good ? "good answer" : "bad answer";
    b.addEventListener("click", async (ev) => {
      ev.stopPropagation();
      try {
        await api("/feedback", { model: stage, messages, sampling: settings,
                                 completion: card.querySelector(".text").textContent, label: good });
        box.querySelectorAll("button").forEach((x) => x.classList.remove("chosen"));
        b.classList.add("chosen");
        box.querySelector(".saved").textContent = "saved";
      } catch (e) { status(e.message, true); }
    });
    box.append(b);
  }
  box.append(el("span", "saved"));
  return box;
}

// With several answers, clicking them best first ranks them; "Save ranking" posts the order.
function rankingControls(column, stage, messages, settings) {
  const order = [];
  const save = el("button", "save-ranking", "Save ranking");
  save.type = "button";
  save.disabled = true;
  const note = el("span", "saved");
  column.querySelectorAll(".answer").forEach((card) => {
    card.classList.add("rankable");
    card.addEventListener("click", () => {
      if (order.includes(card) || !card.dataset.done) return;
      order.push(card);
      card.classList.add("ranked");
      card.querySelector(".rank").textContent = order.length + ".";
      save.disabled = order.length < 2;
    });
  });
  save.addEventListener("click", async () => {
    try {
      const ranking = order.map((c) => c.querySelector(".text").textContent);
      const res = await api("/feedback", { model: stage, messages, sampling: settings, ranking });
      note.textContent = "saved " + (await res.json()).written + " pairs";
    } catch (e) { status(e.message, true); }
  });
  column.append(save, note);
}

// Each stage column's conversation so far (user and assistant messages), kept until "New
// conversation": a stage answers every prompt with its own earlier turns as context.
let conversations = {};

// The turns a column already had, shown above its new answers.
function historyBlock(history) {
  const box = el("div", "history");
  for (const m of history) {
    const turn = el("div", "turn " + m.role);
    turn.append(el("span", "role", m.role === "user" ? "you" : "model"), el("span", "said", m.content));
    box.append(turn);
  }
  return box;
}

async function askStage(stage, messages, settings, n) {
  const info = stages.find((s) => s.id === stage);
  const column = el("div", "column");
  column.dataset.stage = stage;
  const title = el("h3", "", stage + " ");
  title.append(el("span", "kind", info.kind));
  column.append(title, historyBlock(messages));
  const cards = [];
  for (let i = 0; i < n; i++) {
    const card = el("div", "answer");
    card.append(el("span", "rank"), el("div", "text"), rateButtons(card, stage, messages, settings));
    cards.push(card);
    column.append(card);
  }
  $("answers").append(column);
  try {
    const res = await api("/chat/completions",
      { model: stage, messages, n, stream: true, fit_context: true, ...settings });
    const dropped = Number(res.headers.get("x-gptlab-dropped-messages") || 0);
    if (dropped > 0) {
      column.querySelector(".history").prepend(el("p", "dropped",
        `The oldest ${dropped} message${dropped > 1 ? "s" : ""} no longer fit the ${info.context}-token context: ` +
        "the model did not see them (greyed out)."));
      column.querySelectorAll(".history .turn").forEach((t, i) => { if (i < dropped) t.classList.add("unseen"); });
    }
    await readStream(res,
      (i, text) => { cards[i].querySelector(".text").textContent += text; },
      (i) => { cards[i].dataset.done = "true"; });
    // The conversation goes on from the first answer.
    conversations[stage] = [...messages, { role: "assistant", content: cards[0].querySelector(".text").textContent }];
  } catch (e) {
    column.append(el("p", "error", e.message));
  }
  if (n > 1) rankingControls(column, stage, messages, settings);
}

async function send(ev) {
  ev.preventDefault();
  const prompt = $("prompt").value.trim();
  const chosen = [...document.querySelectorAll("#stages input:checked")].map((c) => c.value);
  if (!prompt || chosen.length === 0) return;
  const settings = sampling();
  const n = Math.max(1, Math.min(8, Number($("n").value) || 1));
  $("answers").replaceChildren();
  $("send").disabled = true;
  await Promise.all(chosen.map((s) =>
    askStage(s, [...(conversations[s] || []), { role: "user", content: prompt }], settings, n)));
  $("send").disabled = false;
}

function newConversation() {
  conversations = {};
  $("answers").replaceChildren();
  $("prompt").focus();
}

// One bar; widths are relative to the most likely entry so small models' bars stay visible.
function barRow(label, prob, scale, extraClass) {
  const row = el("div", "bar-row");
  const bar = el("div", "bar " + (extraClass || ""));
  bar.style.width = Math.max(1, Math.round((prob / scale) * 100)) + "%";
  const track = el("div");
  track.append(bar);
  row.append(el("span", "token", JSON.stringify(label).slice(1, -1)), track,
             el("span", "prob", (prob * 100).toFixed(prob < 0.001 ? 4 : 1) + "%"));
  return row;
}

let nextTokenTimer;
function nextTokenSoon() {
  clearTimeout(nextTokenTimer);
  nextTokenTimer = setTimeout(nextToken, 250);
}

async function nextToken() {
  const prompt = $("prompt").value;
  const panel = $("next-token");
  if (!prompt || !$("explore-stage").value) return panel.replaceChildren();
  const candidates = $("candidates").value.split(",").map((c) => c.trim()).filter((c) => c);
  try {
    const res = await api("/explore/next_token",
      { model: $("explore-stage").value, prompt, top_k: 10, candidates });
    const out = await res.json();
    const top = Math.max(...out.tokens.map((t) => t.prob));
    const best = Math.max(...out.candidates.map((c) => c.prob), 1e-300);
    panel.replaceChildren(...out.tokens.map((t) => barRow(t.token, t.prob, top)),
                          ...out.candidates.map((c) => barRow(c.text, c.prob, best, "candidate")));
  } catch (e) { panel.replaceChildren(el("p", "error", e.message)); }
}

let attention;
async function showAttention() {
  const prompt = $("prompt").value;
  if (!prompt) return;
  try {
    const res = await api("/explore/attention", { model: $("explore-stage").value, prompt });
    attention = (await res.json()).attention;
    const fill = (select, count, name) => {
      select.replaceChildren(...Array.from({ length: count }, (_, i) => {
        const o = el("option", "", name + " " + i);
        o.value = i;
        return o;
      }));
    };
    fill($("layer"), attention.n_layer, "layer");
    fill($("head"), attention.n_head, "head");
    drawHeatmap();
  } catch (e) { status(e.message, true); }
}

// Rows are queries, columns keys; darker is more attention. Tokens label both axes.
function drawHeatmap() {
  if (!attention) return;
  const canvas = $("heatmap");
  const ctx = canvas.getContext("2d");
  const weights = attention.layers[Number($("layer").value)][Number($("head").value)];
  const t = attention.tokens.length;
  const margin = 40;
  const cell = Math.max(4, Math.floor((canvas.width - margin) / t));
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = Math.min(14, cell) + 'px "Noto Sans SC gptlab", sans-serif';
  ctx.fillStyle = "#333";
  attention.tokens.forEach((tok, i) => {
    ctx.fillText(tok, 2, margin + i * cell + cell * 0.8, margin - 4);
    ctx.fillText(tok, margin + i * cell + 1, margin - 6, cell);
  });
  for (let q = 0; q < t; q++) {
    for (let k = 0; k < t; k++) {
      const w = weights[q][k];
      ctx.fillStyle = `rgba(31, 59, 87, ${w})`;
      ctx.fillRect(margin + k * cell, margin + q * cell, cell - 1, cell - 1);
    }
  }
  canvas.dataset.drawn = String(t);
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask").addEventListener("submit", send);
  $("new-conversation").addEventListener("click", newConversation);
  $("prompt").addEventListener("input", nextTokenSoon);
  $("candidates").addEventListener("input", nextTokenSoon);
  $("explore-stage").addEventListener("change", nextToken);
  $("show-attention").addEventListener("click", showAttention);
  $("layer").addEventListener("change", drawHeatmap);
  $("head").addEventListener("change", drawHeatmap);
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    apiKey = $("api-key").value;
    sessionStorage.setItem("gptlab-api-key", apiKey);
    $("key-form").hidden = true;
    loadStages().catch((e) => status(e.message, true));
  });
  loadStages().catch((e) => status(e.message, true));
});
