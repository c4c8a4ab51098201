// The upload page of scripts/serve.py: one photo through POST /v1/upscale, shown against its input.
// Plain browser JavaScript, no build step and no outside requests. Every URL is relative, so the page also
// works behind a reverse proxy that serves the API under a prefix.
"use strict";

const $ = (id) => document.getElementById(id);
const EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/tiff": "tiff"};

const state = {models: [], limits: {}, file: null, inputUrl: null, resultUrl: null, controller: null, timer: null};

/** One line for a refused request: the API's `detail`, else what the browser or the proxy said. */
async function refusal(response) {
  let detail = "";
  try {
    const body = await response.json();
    detail = body.detail || body.error || "";
  } catch (e) {
    detail = "";
  }
  if (!detail) detail = `${response.status} ${response.statusText}`.trim();
  const retry = response.headers.get("Retry-After");
  return retry ? `${detail} (try again in ${retry} s)` : detail;
}

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
}

function setStatus(text) {
  $("status").textContent = text;
}

function modelByName(name) {
  return state.models.find((m) => m.name === name);
}

/** The scales offered for a model: its own first, then the usual ones (the API takes any positive number). */
function fillScales(model) {
  const select = $("outscale");
  const scales = [...new Set([model.scale, 1, 1.5, 2, 3, 4, 6, 8])].sort((a, b) => a - b);
  select.replaceChildren(...scales.map((s) => {
    const option = new Option(s === model.scale ? `×${s} (the model's own)` : `×${s}`, String(s));
    option.selected = s === model.scale;
    return option;
  }));
  select.disabled = false;
  $("denoise-field").hidden = !model.denoise;
  $("model-about").textContent = [model.architecture, model.purpose].filter(Boolean).join(" · ");
}

async function loadModels() {
  try {
    const response = await fetch("v1/models");
    if (!response.ok) throw new Error(await refusal(response));
    const listing = await response.json();
    state.models = listing.models;
    state.limits = listing.limits || {};
  } catch (e) {
    showError(`Cannot list the models: ${e.message}`);
    return;
  }
  const select = $("model");
  select.replaceChildren(...state.models.map((m) => new Option(`${m.name} (×${m.scale})`, m.name)));
  select.disabled = state.models.length === 0;
  if (state.models.length) fillScales(state.models[0]);
  updateButton();
}

function updateButton() {
  $("go").disabled = !state.file || !state.models.length || state.controller !== null;
}

function chooseFile(file) {
  if (!file) return;
  state.file = file;
  if (state.inputUrl) URL.revokeObjectURL(state.inputUrl);
  state.inputUrl = URL.createObjectURL(file);
  $("chosen").textContent = `${file.name} · ${(file.size / 1024).toFixed(0)} KB`;
  // The service answers an over-long upload before reading it and closes the connection, which a browser may
  // report as a network error: say the limit here instead.
  const limit = state.limits.max_upload_bytes;
  const tooLarge = limit && file.size > limit;
  showError(tooLarge ? `${file.name} is ${(file.size / 1e6).toFixed(1)} MB; this service takes uploads of at most ` +
                       `${(limit / 1e6).toFixed(1)} MB` : "");
  if (tooLarge) state.file = null;
  updateButton();
}

/** `photo.jpg`, ×4, image/png -> `photo_x4.png`. */
function resultName(inputName, scale, contentType) {
  const stem = (inputName || "image").replace(/\.[^./\\]*$/, "").replace(/[\\/]/g, "_") || "image";
  const ext = EXTENSIONS[(contentType || "").split(";")[0].trim()] || "png";
  return `${stem}_x${scale}.${ext}`;
}

function startWaiting() {
  const started = performance.now();
  state.controller = new AbortController();
  $("form").setAttribute("aria-busy", "true");
  $("cancel").hidden = false;
  document.body.classList.add("busy");
  const tick = () => setStatus(`Upscaling… ${((performance.now() - started) / 1000).toFixed(0)} s`);
  tick();
  state.timer = setInterval(tick, 1000);
  updateButton();
}

function stopWaiting(text) {
  clearInterval(state.timer);
  state.controller = null;
  $("form").removeAttribute("aria-busy");
  $("cancel").hidden = true;
  document.body.classList.remove("busy");
  setStatus(text);
  updateButton();
}

async function upscale(event) {
  event.preventDefault();
  if (!state.file || state.controller) return;
  const model = modelByName($("model").value);
  const query = new URLSearchParams({model: model.name, outscale: $("outscale").value, format: $("format").value});
  if (model.denoise) query.set("denoise", $("denoise").value);
  const body = new FormData();
  body.append("file", state.file, state.file.name);
  const headers = {};
  const key = $("api-key").value.trim();
  if (key) headers["Authorization"] = `Bearer ${key}`;
  showError("");
  startWaiting();
  let response;
  try {
    response = await fetch(`v1/upscale?${query}`, {method: "POST", body, headers, signal: state.controller.signal});
  } catch (e) {
    stopWaiting("");
    if (e.name !== "AbortError") showError(`The request failed: ${e.message}`);
    else setStatus("Cancelled.");
    return;
  }
  if (!response.ok) {
    const text = await refusal(response);
    stopWaiting("");
    showError(text);
    if (response.status === 401) $("key-box").open = true;
    return;
  }
  const blob = await response.blob();
  stopWaiting("Done.");
  showResult(blob, response.headers, model);
}

function showResult(blob, headers, model) {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  const scale = Number(headers.get("X-Scale") || $("outscale").value);
  const link = $("download");
  link.href = state.resultUrl;
  link.download = resultName(state.file.name, scale, blob.type);
  link.textContent = `Download ${link.download}`;
  const facts = [
    headers.get("X-Model") || model.name,
    `×${scale}`,
    `${(headers.get("X-Input-Size") || "?").replace("x", "×")} → ${(headers.get("X-Output-Size") || "?").replace("x", "×")}`,
    `${(blob.size / 1024).toFixed(0)} KB`,
    headers.get("X-Time-Ms") ? `${(Number(headers.get("X-Time-Ms")) / 1000).toFixed(2)} s` : "",
  ];
  $("facts").textContent = facts.filter(Boolean).join(" · ");
  $("before").src = state.inputUrl;
  $("after").src = state.resultUrl;
  $("result").hidden = false;
  $("after").decode().catch(() => {}).then(applyZoom);
}

/** Fit: the whole result in the viewer (never enlarged); N: N screen pixels per result pixel, scrollable. */
function applyZoom() {
  const after = $("after");
  if (!after.naturalWidth) return;
  const zoom = $("zoom").value;
  let width = after.naturalWidth * Number(zoom) / window.devicePixelRatio;
  if (zoom === "fit") {
    const viewer = $("viewer");
    const room = Math.min(viewer.clientWidth, (window.innerHeight * 0.75 - 4) * after.naturalWidth / after.naturalHeight);
    width = Math.min(after.naturalWidth, room);
  }
  $("stage").style.width = `${Math.floor(width)}px`;
}

function setDivider(percent) {
  const value = Math.min(100, Math.max(0, percent));
  $("stage").style.setProperty("--divider", `${value}%`);
  $("divider").value = String(Math.round(value));
}

function dividerFromPointer(event) {
  const box = $("stage").getBoundingClientRect();
  setDivider(((event.clientX - box.left) / box.width) * 100);
}

function wire() {
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  const drop = $("drop");
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) chooseFile(e.dataTransfer.files[0]);
  });
  $("model").addEventListener("change", (e) => fillScales(modelByName(e.target.value)));
  $("denoise").addEventListener("input", (e) => { $("denoise-value").textContent = e.target.value; });
  $("denoise-value").textContent = $("denoise").value;
  $("form").addEventListener("submit", upscale);
  $("cancel").addEventListener("click", () => state.controller && state.controller.abort());
  $("divider").addEventListener("input", (e) => setDivider(Number(e.target.value)));
  $("zoom").addEventListener("change", applyZoom);
  window.addEventListener("resize", () => { if ($("zoom").value === "fit") applyZoom(); });
  const stage = $("stage");
  stage.addEventListener("pointerdown", (e) => { stage.setPointerCapture(e.pointerId); dividerFromPointer(e); });
  stage.addEventListener("pointermove", (e) => { if (stage.hasPointerCapture(e.pointerId)) dividerFromPointer(e); });
  setDivider(50);
  loadModels();
}

wire();
