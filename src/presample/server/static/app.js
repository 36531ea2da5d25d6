// presample web page: plain ES module, no build step, no third-party code.
// Every string from the model or the user goes through textContent, never innerHTML.

const $ = (id) => document.getElementById(id);
const CATEGORIES = ["special", "characters", "copyrights", "artist", "general", "meta", "quality", "rating"];
const HISTORY_KEY = "presample.history";
const HISTORY_MAX = 50;
const state = { models: [], result: null, request: null, refine: null, busy: false };

// ---------------------------------------------------------------- helpers
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("--")) node.style.setProperty(key, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function status(text, error = false) {
  const node = $("status");
  node.textContent = text;
  node.classList.toggle("error", error);
}

class ApiError extends Error {
  constructor(message, body) { super(message); this.body = body; }
}

async function api(path, body, { method = body === undefined ? "GET" : "POST", raw = false } = {}) {
  const headers = {};
  const key = localStorage.getItem("presample.apiKey");
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    $("keybox").hidden = false;
    $("api-key").focus();
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    let answer = null;
    try { answer = await response.json(); detail = answer.detail || detail; } catch { /* not JSON */ }
    throw new ApiError(detail, answer);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

async function busy(button, work) {
  if (state.busy) return;
  state.busy = true;
  document.body.setAttribute("aria-busy", "true");
  if (button) button.disabled = true;
  const started = performance.now();
  status("Working…");
  try {
    const message = await work();  // a work may say what it did ("Copied ...")
    status(typeof message === "string" ? message : `Done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    status(error instanceof ApiError ? error.message : `Error: ${error.message}`, true);
  } finally {
    state.busy = false;
    document.body.removeAttribute("aria-busy");
    if (button) button.disabled = false;
  }
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard API needs a secure context; a plain-http LAN address is not one.
    const area = $("clipboard-fallback");
    area.value = text;
    area.select();
    document.execCommand("copy");
  }
  status(`Copied ${what}`);
  return `Copied ${what}`;
}

function numberOrNull(id) {
  const value = $(id).value.trim();
  return value === "" ? null : Number(value);
}

function fillSelect(select, values, selected) {
  select.replaceChildren(...values.map((v) => el("option", { value: v, textContent: v.replaceAll("_", " ") })));
  if (selected !== undefined) select.value = selected;
}

// A first "model default" choice: the request then leaves the length out and the
// model card's (or the request's) default applies, as on the command line.
function fillLengths() {
  const model = state.models.find((m) => m.name === $("model").value) ?? state.models.find((m) => m.default);
  for (const name of ["tag_length", "nl_length"]) {
    const select = $(name);
    const kept = select.value;
    const fallback = model?.defaults?.[name] ?? "long";
    select.replaceChildren(
      el("option", { value: "", textContent: `model default (${fallback.replaceAll("_", " ")})` }),
      ...state.lengths.map((v) => el("option", { value: v, textContent: v.replaceAll("_", " ") })));
    select.value = kept;
  }
}

// ---------------------------------------------------------------- tabs
const VIEWS = ["presample", "refine", "canvas"];
function show(view) {
  if (!VIEWS.includes(view)) view = "presample";
  for (const name of VIEWS) {
    $(`view-${name}`).hidden = name !== view;
    $(`tab-${name}`).setAttribute("aria-selected", String(name === view));
    $(`tab-${name}`).tabIndex = name === view ? 0 : -1;
  }
  if (location.hash !== `#${view}`) history.replaceState(null, "", `#${view}`);
}
function currentView() {
  return VIEWS.find((name) => !$(`view-${name}`).hidden);
}

// ---------------------------------------------------------------- presample
function buildRequest() {
  const request = {
    prompt: $("prompt").value,
    template: $("template").value,
    seed: Number($("seed").value || -1),
    sfw: $("sfw").checked,
    gen_meta: $("gen_meta").checked,
    shuffle_new_tags: !$("keep_order").checked,
    ban: $("ban").value.split(",").map((t) => t.trim()).filter(Boolean).map((pattern) => ({ kind: "exact", pattern })),
  };
  // Left out, a length is the model card's: the same as the CLI and the API give.
  for (const name of ["tag_length", "nl_length"]) if ($(name).value) request[name] = $(name).value;
  const model = $("model").value;
  if (model) request.model = model;
  const ratio = numberOrNull("aspect_ratio");
  if (ratio !== null) request.aspect_ratio = ratio;
  const sampling = {};
  for (const name of ["temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens"]) {
    const value = numberOrNull(name);
    if (value !== null) sampling[name] = value;
  }
  if (Object.keys(sampling).length) request.sampling = sampling;
  return request;
}

function restoreRequest(request) {
  $("prompt").value = request.prompt ?? "";
  for (const name of ["tag_length", "nl_length"]) $(name).value = request[name] ?? "";
  if (request.template) $("template").value = request.template;
  $("seed").value = request.seed ?? -1;
  $("sfw").checked = request.sfw ?? true;
  $("gen_meta").checked = request.gen_meta ?? false;
  $("keep_order").checked = request.shuffle_new_tags === false;
  $("ban").value = (request.ban || []).map((b) => b.pattern).join(", ");
  $("aspect_ratio").value = request.aspect_ratio ?? "";
  for (const name of ["temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens"]) {
    $(name).value = request.sampling?.[name] ?? "";
  }
}

function renderResult(result, request) {
  state.result = result;
  state.request = request;
  $("result").hidden = false;
  $("result-prompt").textContent = result.prompt;
  const seconds = result.timings?.total_seconds;
  $("result-meta").textContent = `seed ${result.seed} · ${result.model}${seconds ? ` · ${seconds.toFixed(1)} s` : ""}`;
  // The server says which tags the model added (canonical names, as in result.tags).
  const added = new Set(result.added || []);
  const chips = [];
  for (const category of CATEGORIES) {
    for (const tag of result.tags?.[category] || []) {
      chips.push(el("span", {
        className: `tag${added.has(tag) ? " new" : ""}`,
        "--c": `var(--${category})`,
        title: `${category}${added.has(tag) ? " · added by the model" : " · yours"}`,
        textContent: tag,
      }));
    }
  }
  $("result-tags").replaceChildren(...chips);
  $("legend").replaceChildren(
    ...CATEGORIES.map((c) => el("span", { "--c": `var(--${c})`, textContent: c })),
    el("span", { className: "added", textContent: "bold: added by the model" }));
  $("steps-list").replaceChildren(...(result.steps || []).map((s) =>
    el("li", { textContent: `${s.task} (${s.length}, ${s.expand ? "expand" : "generate"}): ${s.generated_tokens} tokens, ${s.attempts} attempt(s)${s.draws > s.attempts ? `, ${s.draws} drawn` : ""}${s.reached_target ? "" : ", length target not reached"}` })));
}

async function formatted(target) {
  if (!state.result) return "";
  if ((state.request?.target || "a1111") === target) return state.result.prompt;
  const { model, sampling, ...request } = state.request;
  const answer = await api("/api/format", { request, result: state.result, target });
  return answer.prompt;
}

// ---------------------------------------------------------------- history
function loadHistory() {
  try { return JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]"); } catch { return []; }
}
function saveHistory(items) {
  try { localStorage.setItem(HISTORY_KEY, JSON.stringify(items.slice(0, HISTORY_MAX))); } catch { /* storage full or off */ }
}
function addHistory(request, result) {
  const items = loadHistory();
  items.unshift({ at: Date.now(), request, result });
  saveHistory(items);
  renderHistory();
}
function renderHistory() {
  const items = loadHistory();
  $("history-empty").hidden = items.length > 0;
  $("history").replaceChildren(...items.map((item, index) => {
    const time = new Date(item.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const button = el("button", { type: "button", title: "Show this result again" },
      el("span", { className: "line", textContent: item.request.prompt || "(empty)" }),
      el("small", { textContent: `${time} · seed ${item.result.seed}` }));
    button.addEventListener("click", () => {
      restoreRequest(item.request);
      renderResult(item.result, item.request);
      status(`History item ${index + 1}`);
    });
    return el("li", {}, button);
  }));
}

// ---------------------------------------------------------------- tag suggestions
let suggestTimer = 0;
function compactCount(n) {
  return new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 }).format(n);
}
function currentWord() {
  const area = $("prompt");
  const before = area.value.slice(0, area.selectionStart);
  const start = Math.max(before.lastIndexOf(","), before.lastIndexOf("\n")) + 1;
  return { start, word: before.slice(start).trim() };
}
function suggest() {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(async () => {
    const { start, word } = currentWord();
    const box = $("suggest");
    if (word.length < 2 || word.includes(" ") && word.split(" ").length > 4) { box.hidden = true; return; }
    try {
      const answer = await api(`/api/tags?q=${encodeURIComponent(word)}&limit=8`);
      box.replaceChildren(...answer.matches.map((m) => {
        const button = el("button", { type: "button", "--c": `var(--${m.category})`,
          title: `${m.category}, ${m.post_count.toLocaleString()} posts` });
        button.append(m.name, el("small", { textContent: compactCount(m.post_count) }));
        button.addEventListener("click", () => {
          const area = $("prompt");
          const end = area.selectionStart;
          const lead = start > 0 ? " " : "";
          area.value = `${area.value.slice(0, start)}${lead}${m.name}, ${area.value.slice(end).replace(/^[^,\n]*,?\s*/, "")}`;
          area.focus();
          box.hidden = true;
        });
        return button;
      }));
      box.hidden = answer.matches.length === 0;
    } catch { box.hidden = true; }
  }, 180);
}

// ---------------------------------------------------------------- refine
function renderRefine(view) {
  state.refine = view;
  $("refine-session").hidden = false;
  $("refine-current").textContent = view.prompt;
  $("refine-meta").textContent = `round ${view.round} · seed ${view.seed}`;
  $("refine-undo").disabled = !view.can_undo;
  const cards = (view.candidates || []).map((candidate, i) => {
    const card = el("button", { type: "button", className: "card", role: "listitem",
      "aria-label": `Candidate ${i + 1}: ${candidate.prompt}` },
      el("span", { className: "num", textContent: String(i + 1) }),
      el("span", { className: "added", textContent: candidate.added.join(", ") || "(nothing new)" }),
      el("span", { className: "base", textContent: candidate.prompt }));
    card.addEventListener("click", () => pick(candidate.index));
    return card;
  });
  if (view.candidates && cards.length === 0) {
    // The model's draws can all be dropped (duplicates, banned, unsafe syntax).
    cards.push(el("p", { className: "muted", textContent: "No new candidates this time: press r (New candidates) to draw again." }));
  }
  $("candidates").replaceChildren(...cards);
}

async function startRefine(prompt) {
  const options = {
    candidates: Number($("refine-candidates").value || 3),
    step_tokens: Number($("refine-step").value || 6),
    strategy: $("refine-strategy").value,
    seed: Number($("refine-seed").value || -1),
  };
  const body = { prompt, options };
  if ($("model").value) body.model = $("model").value;
  const view = await api("/api/refine", body);
  renderRefine(view);
}
function pick(index) {
  if (!state.refine) return;
  busy(null, async () => renderRefine(await api(`/api/refine/${state.refine.id}/pick`, { index })));
}
function undo() {
  if (!state.refine?.can_undo) return;
  busy(null, async () => renderRefine(await api(`/api/refine/${state.refine.id}/undo`, {})));
}
function more() {
  if (!state.refine) return;
  busy(null, async () => renderRefine(await api(`/api/refine/${state.refine.id}/redraw`, {})));
}

// ---------------------------------------------------------------- canvas
async function drawCanvas() {
  const answer = $("canvas-answer").value;
  const lenient = $("canvas-lenient").checked;
  let parsed;
  try {
    parsed = await api("/api/canvas/parse", { answer, lenient });
  } catch (error) {
    // A refused answer lists every problem with its line, not just the first.
    const problems = error.body?.problems || [];
    $("canvas-out").hidden = problems.length === 0;
    $("canvas-problems").replaceChildren(...problems.map((p) =>
      el("li", { textContent: `${p.line ? `line ${p.line}: ` : ""}${p.message}` })));
    throw error;
  }
  const response = await api("/api/canvas/composition", { answer, lenient, width: 720, height: 720, labels: false }, { raw: true });
  const image = $("canvas-image");
  if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(await response.blob());
  $("canvas-out").hidden = false;
  const g = parsed.canvas.global_description;
  $("canvas-global").textContent = `${g.description} (${parsed.canvas.regions.length} regions)`;
  const stage = $("canvas-stage");
  stage.querySelectorAll(".box").forEach((b) => b.remove());
  const legend = [];
  parsed.layers.slice(1).forEach((layer, i) => {
    const region = parsed.canvas.regions[layer.region];
    const [top, bottom, left, right] = layer.box;
    const rgb = layer.rgb;
    const luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
    const box = el("div", { className: "box", title: region.description,
      style: { top: `${(top / 90) * 100}%`, left: `${(left / 90) * 100}%`,
        width: `${((right - left) / 90) * 100}%`, height: `${((bottom - top) / 90) * 100}%` } },
      el("span", { textContent: `${i + 1}. ${region.description}`,
        style: { background: `rgb(${rgb.join(",")})`, color: luma > 140 ? "#000" : "#fff" } }));
    stage.append(box);
    legend.push(el("li", {},
      el("span", { className: "swatch", style: { background: `rgb(${rgb.join(",")})` } }),
      `${region.description} — ${region.location}, ${region.area}, distance ${region.distance_to_viewer}`));
  });
  $("canvas-regions").replaceChildren(...legend);
  $("canvas-problems").replaceChildren(...parsed.problems.map((p) =>
    el("li", { textContent: `${p.line ? `line ${p.line}: ` : ""}${p.message}` })));
}

// ---------------------------------------------------------------- wiring
async function init() {
  for (const name of VIEWS) $(`tab-${name}`).addEventListener("click", () => show(name));
  $("tab-presample").parentElement.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const next = VIEWS[(VIEWS.indexOf(currentView()) + (event.key === "ArrowRight" ? 1 : VIEWS.length - 1)) % VIEWS.length];
    show(next);
    $(`tab-${next}`).focus();
  });
  show(location.hash.slice(1));
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));

  $("save-key").addEventListener("click", () => {
    localStorage.setItem("presample.apiKey", $("api-key").value.trim());
    $("keybox").hidden = true;
    initModels();
  });

  $("presample-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("run"), async () => {
      const request = buildRequest();
      const result = await api("/api/presample", request);
      renderResult(result, request);
      addHistory(request, result);
      if (result.notes?.length) return `Note: ${result.notes.join(" ")}`;
    });
  });
  $("prompt").addEventListener("input", suggest);
  $("copy-a1111").addEventListener("click", () => busy(null, async () => copy(await formatted("a1111"), "the A1111 prompt")));
  $("copy-comfyui").addEventListener("click", () => busy(null, async () => copy(await formatted("comfyui"), "the ComfyUI prompt")));
  $("copy-clip").addEventListener("click", () => busy(null, async () => copy(state.result?.tags_prompt ?? "", "the tags")));
  $("copy-t5").addEventListener("click", () => busy(null, async () => copy(state.result?.text_prompt ?? "", "the text")));
  $("copy-flux2").addEventListener("click", () => busy(null, async () =>
    copy(JSON.stringify(state.result?.flux2_prompt ?? {}, null, 2), "the FLUX.2 JSON")));
  $("to-refine").addEventListener("click", () => {
    $("refine-prompt").value = state.result?.prompt.replace(/\s+/g, " ").trim() || "";
    show("refine");
    $("refine-prompt").focus();
  });
  $("clear-history").addEventListener("click", () => { saveHistory([]); renderHistory(); });
  renderHistory();

  $("refine-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter, () => startRefine($("refine-prompt").value));
  });
  $("refine-undo").addEventListener("click", undo);
  $("refine-more").addEventListener("click", more);
  $("refine-copy").addEventListener("click", () => state.refine && copy(state.refine.prompt, "prompt"));

  $("canvas-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter, drawCanvas);
  });

  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      event.preventDefault();
      $(`${currentView()}-form`).requestSubmit();
      return;
    }
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
    if (typing || event.ctrlKey || event.metaKey || event.altKey || currentView() !== "refine") return;
    if (/^[1-9]$/.test(event.key)) {
      const candidate = state.refine?.candidates?.[Number(event.key) - 1];
      if (candidate) pick(candidate.index);
    } else if (event.key === "u") undo();
    else if (event.key === "r") more();
  });
  await initModels();
}

async function initModels() {
  try {
    const info = await api("/api/models");
    state.models = info.models;
    const select = $("model");
    select.replaceChildren(...info.models.map((m) =>
      el("option", { value: m.name, textContent: `${m.name} (${m.layout}, ${m.dtype})`, selected: m.default })));
    state.lengths = info.lengths;
    fillLengths();
    select.addEventListener("change", fillLengths);
    fillSelect($("template"), info.templates, "typed");
    status("Ready");
  } catch (error) {
    status(error.message, true);
  }
}

init();
