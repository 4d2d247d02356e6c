/* s3drop upload page: plain JavaScript, no build step, no inline code (CSP-ready).
 *
 * Flow per file: check type and size here -> hash (SHA-256, WebCrypto) -> POST /api/uploads (sign)
 * -> POST the signed form straight to storage (XMLHttpRequest, for upload progress) -> POST
 * /api/uploads/{id}/complete (the server verifies the bytes) -> the image joins the gallery.
 *
 * Each file row carries data-state: queued | uploading | verifying | done | rejected | failed |
 * cancelled | refused (never left the browser, or the server would not sign it), and a .message.
 */
"use strict";

(() => {
  const MAX_PARALLEL = 3;
  const PAGE_SIZE = 24;
  const HASH_LIMIT = 512 * 1024 * 1024; // bigger files are sent without a checksum
  const PREVIEW_LIMIT = 40 * 1024 * 1024; // bigger files get a badge, not a decoded preview
  const TYPE_NAMES = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "image/avif": "AVIF",
  };
  const EXTENSION_TYPES = {
    png: "image/png",
    jpg: "image/jpeg",
    jpeg: "image/jpeg",
    jpe: "image/jpeg",
    jfif: "image/jpeg",
    webp: "image/webp",
    gif: "image/gif",
    avif: "image/avif",
  };
  const TYPE_EXTENSIONS = {
    "image/png": [".png"],
    "image/jpeg": [".jpg", ".jpeg"],
    "image/webp": [".webp"],
    "image/gif": [".gif"],
    "image/avif": [".avif"],
  };
  const ACTIVE = new Set(["queued", "uploading", "verifying"]);
  const FINISHED = new Set(["done", "rejected", "refused", "cancelled"]);

  const el = (id) => document.getElementById(id);
  const ui = {
    dropzone: el("dropzone"),
    input: el("file-input"),
    limits: el("dropzone-limits"),
    configError: el("config-error"),
    queue: el("queue"),
    files: el("files"),
    summary: el("queue-summary"),
    clearFinished: el("clear-finished"),
    fileTemplate: el("file-template"),
    gallery: el("gallery"),
    galleryStatus: el("gallery-status"),
    galleryCount: el("gallery-count"),
    loadMore: el("load-more"),
    tileTemplate: el("tile-template"),
    viewer: el("viewer"),
    viewerImg: el("viewer-img"),
    viewerTitle: el("viewer-title"),
    viewerFacts: el("viewer-facts"),
    viewerOpen: el("viewer-open"),
    viewerDelete: el("viewer-delete"),
    viewerClose: el("viewer-close"),
    confirm: el("confirm"),
    confirmText: el("confirm-text"),
    confirmError: el("confirm-error"),
    confirmDelete: el("confirm-delete"),
    confirmCancel: el("confirm-cancel"),
    announcer: el("announcer"),
    signin: el("signin"),
    signinTitle: el("signin-title"),
    tokenInput: el("token-input"),
  };
  const TOKEN_KEY = "s3drop.token";

  let config = null;
  let configReady = loadConfig();
  const items = [];
  const waiting = [];
  let active = 0;
  let nextItem = 1;

  // --- small helpers ---------------------------------------------------------------------------

  function formatBytes(bytes) {
    if (bytes < 1024) return bytes === 1 ? "1 byte" : `${bytes} bytes`;
    const units = ["KB", "MB", "GB", "TB"];
    let value = bytes / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    const rounded = Math.round(value * 10) / 10;
    const text = rounded >= 100 || Number.isInteger(rounded) ? String(Math.round(rounded)) : rounded.toFixed(1);
    return `${text} ${units[unit]}`;
  }

  function typeName(type) {
    return TYPE_NAMES[type] || type;
  }

  function listNames(types) {
    return types.map(typeName).join(", ");
  }

  function extensionOf(name) {
    const dot = name.lastIndexOf(".");
    return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  }

  function fileType(file) {
    if (file.type) return file.type.toLowerCase();
    return EXTENSION_TYPES[extensionOf(file.name)] || "";
  }

  function capitalise(text) {
    return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
  }

  let pendingAnnouncements = [];
  let announceTimer = 0;
  function announce(text) {
    pendingAnnouncements.push(text);
    window.clearTimeout(announceTimer);
    announceTimer = window.setTimeout(() => {
      ui.announcer.textContent = pendingAnnouncements.join(". ");
      pendingAnnouncements = [];
    }, 150);
  }

  /** A JSON API call: {ok, status, data, message}; a network failure is status 0. */
  async function api(method, path, body, signal) {
    const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin", signal };
    const token = storedToken();
    if (token) init.headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      return { ok: false, status: 0, data: null, message: "Network error: the server could not be reached" };
    }
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch {
        data = null;
      }
    }
    const result = { ok: response.ok, status: response.status, data, message: response.ok ? "" : apiError(response, data) };
    if (response.status === 401) needToken(response, Boolean(token));
    return result;
  }

  // --- access tokens (when the server is configured with bearer tokens) ----------------------

  function storedToken() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY) || "";
    } catch {
      return "";
    }
  }

  /** A 401 that asks for a bearer token: show the token form (basic auth is the browser's job). */
  function needToken(response, hadToken) {
    const challenge = (response.headers.get("WWW-Authenticate") || "").toLowerCase();
    if (!challenge.startsWith("bearer")) return;
    ui.signinTitle.textContent = hadToken
      ? "That access token was not accepted; enter another"
      : "This server asks for an access token";
    ui.signin.dataset.kind = hadToken ? "error" : "";
    if (ui.signin.hidden) {
      ui.signin.hidden = false;
      ui.tokenInput.focus();
    }
  }

  ui.signin.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = ui.tokenInput.value.trim();
    if (!token) return;
    try {
      window.sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      return;
    }
    ui.tokenInput.value = "";
    ui.signin.hidden = true;
    announce("Access token saved");
    if (!config) {
      ui.configError.hidden = true;
      configReady = loadConfig();
    }
    for (const item of items) if (item.state === "failed" && item.needsToken) retry(item);
    if (!gallery.available) loadGallery();
  });

  function apiError(response, data) {
    let message;
    if (data && data.error && typeof data.error.message === "string") {
      message = data.error.message;
    } else if (data && typeof data.detail === "string") {
      message = `${data.detail} (HTTP ${response.status})`;
    } else {
      message = `${response.statusText || "Error"} (HTTP ${response.status})`;
    }
    const retryAfter = response.headers.get("Retry-After");
    if (retryAfter) message += ` Try again in ${retryAfter} s.`;
    return message;
  }

  async function sha256Hex(file) {
    if (!window.isSecureContext || !window.crypto || !window.crypto.subtle) return null;
    if (file.size > HASH_LIMIT) return null;
    try {
      const digest = await window.crypto.subtle.digest("SHA-256", await file.arrayBuffer());
      return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
    } catch {
      return null;
    }
  }

  // --- configuration ---------------------------------------------------------------------------

  async function loadConfig() {
    const result = await api("GET", "/api/config");
    if (!result.ok || !result.data || !Array.isArray(result.data.allowed_types)) {
      ui.limits.textContent = "";
      ui.configError.textContent = `Uploads are unavailable: ${result.message || "the server sent no settings"}`;
      ui.configError.hidden = false;
      return null;
    }
    config = result.data;
    const accept = [];
    for (const type of config.allowed_types) accept.push(type, ...(TYPE_EXTENSIONS[type] || []));
    ui.input.accept = accept.join(",");
    const names = config.allowed_types.map(typeName);
    const kinds = names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}` : names[0];
    ui.limits.textContent = `${kinds} · up to ${formatBytes(config.max_bytes)} each`;
    document.body.dataset.ready = "true";
    return config;
  }

  // --- the upload queue ------------------------------------------------------------------------

  function addFiles(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length) return;
    for (const file of files) {
      const item = createItem(file);
      items.push(item);
      ui.files.append(item.el);
      configReady.then(() => admit(item));
    }
    ui.queue.hidden = false;
    updateSummary();
  }

  function createItem(file) {
    const row = ui.fileTemplate.content.firstElementChild.cloneNode(true);
    const item = {
      id: nextItem++,
      file,
      type: fileType(file),
      el: row,
      state: "queued",
      run: 0,
      sha256: undefined,
      controller: null,
      xhr: null,
      upload: null,
      verifyOnly: false,
      removed: false,
      previewUrl: null,
      parts: {
        thumb: row.querySelector(".file-thumb"),
        badge: row.querySelector(".file-badge"),
        name: row.querySelector(".file-name"),
        size: row.querySelector(".file-size"),
        bar: row.querySelector(".bar"),
        fill: row.querySelector(".bar-fill"),
        message: row.querySelector(".message"),
        cancel: row.querySelector(".cancel"),
        retry: row.querySelector(".retry"),
        remove: row.querySelector(".remove"),
      },
    };
    const { parts } = item;
    row.dataset.item = String(item.id);
    row.dataset.name = file.name;
    parts.name.textContent = file.name || "Untitled";
    parts.name.title = file.name;
    parts.size.textContent = formatBytes(file.size);
    parts.badge.textContent = (extensionOf(file.name) || "file").slice(0, 4).toUpperCase();
    parts.bar.setAttribute("aria-label", `Upload progress of ${file.name}`);
    parts.cancel.setAttribute("aria-label", `Cancel upload of ${file.name}`);
    parts.retry.setAttribute("aria-label", `Retry upload of ${file.name}`);
    parts.remove.setAttribute("aria-label", `Remove ${file.name} from the list`);
    parts.cancel.addEventListener("click", () => cancel(item));
    parts.retry.addEventListener("click", () => retry(item));
    parts.remove.addEventListener("click", () => remove(item));
    if (item.type in TYPE_NAMES && file.size > 0 && file.size <= PREVIEW_LIMIT) {
      item.previewUrl = URL.createObjectURL(file);
      parts.thumb.addEventListener("load", () => {
        parts.thumb.hidden = false;
        parts.badge.hidden = true;
      });
      parts.thumb.addEventListener("error", () => {
        parts.thumb.hidden = true;
        parts.badge.hidden = false;
      });
      parts.thumb.src = item.previewUrl;
    }
    setState(item, "queued", "Queued", { quiet: true });
    return item;
  }

  /** Check the file against the server's settings; queue it, or refuse it here. */
  function admit(item) {
    if (item.state !== "queued" || item.removed) return;
    const refusal = checkFile(item);
    if (refusal) {
      setState(item, "refused", refusal);
      return;
    }
    enqueue(item);
  }

  function checkFile(item) {
    if (!config) return "Cannot check this file: the server's settings could not be loaded";
    const allowed = config.allowed_types;
    if (!allowed.includes(item.type)) {
      return `Not an allowed type: ${item.type || "unknown"}. Allowed: ${listNames(allowed)}`;
    }
    if (item.file.size === 0) return "Empty file: there is nothing to upload";
    if (item.file.size > config.max_bytes) {
      return `Too big: ${formatBytes(item.file.size)}, the limit is ${formatBytes(config.max_bytes)}`;
    }
    return null;
  }

  function enqueue(item) {
    item.run += 1;
    setState(item, "queued", "Queued", { quiet: true });
    waiting.push(item);
    pump();
  }

  function pump() {
    while (active < MAX_PARALLEL && waiting.length) {
      const item = waiting.shift();
      if (item.state !== "queued" || item.removed) continue;
      active += 1;
      process(item, item.run).finally(() => {
        active -= 1;
        pump();
      });
    }
  }

  async function process(item, run) {
    const current = () => item.run === run && item.state !== "cancelled";
    try {
      if (!item.verifyOnly) {
        setState(item, "queued", "Preparing…", { quiet: true });
        if (item.sha256 === undefined) item.sha256 = await sha256Hex(item.file);
        if (!current()) return;
        const signed = await sign(item);
        if (!signed || !current()) return;
        const posted = await post(item, signed);
        if (!current()) return;
        if (!posted) return;
        item.upload = signed;
      }
      await complete(item, run);
    } catch (error) {
      if (error && error.name === "AbortError") return;
      if (current()) setState(item, "failed", `Something went wrong: ${error && error.message ? error.message : error}`);
    }
  }

  async function sign(item) {
    item.controller = new AbortController();
    const body = { filename: item.file.name || "image", content_type: item.type, size: item.file.size };
    if (item.sha256) body.sha256 = item.sha256;
    const result = await api("POST", "/api/uploads", body, item.controller.signal);
    item.controller = null;
    if (item.state === "cancelled") return null;
    if (result.ok && result.data && result.data.upload) return result.data.upload;
    item.needsToken = result.status === 401;
    if (result.status === 0) {
      setState(item, "failed", result.message);
    } else if (result.status === 401) {
      setState(item, "failed", `Not signed in: ${result.message}`);
    } else if ([400, 413, 415, 422].includes(result.status)) {
      setState(item, "refused", `Refused: ${result.message}`);
    } else {
      setState(item, "failed", `Could not sign the upload: ${result.message}`);
    }
    return null;
  }

  /** POST the signed form to storage. True on success; otherwise the row says why. */
  function post(item, upload) {
    return new Promise((resolve) => {
      const form = new FormData();
      for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
      form.append("file", item.file, item.file.name || "image");
      const xhr = new XMLHttpRequest();
      item.xhr = xhr;
      const finish = (ok) => {
        item.xhr = null;
        resolve(ok);
      };
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && item.state === "uploading") progress(item, event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status === 200 || xhr.status === 201 || xhr.status === 204) {
          progress(item, 1);
          finish(true);
        } else if (xhr.status === 0) {
          setState(item, "failed", "Network error: storage could not be reached");
          finish(false);
        } else {
          const [state, message] = storageError(xhr, item);
          setState(item, state, message);
          finish(false);
        }
      });
      xhr.addEventListener("error", () => {
        setState(item, "failed", "Network error: storage could not be reached");
        finish(false);
      });
      xhr.addEventListener("timeout", () => {
        setState(item, "failed", "Network error: storage did not answer in time");
        finish(false);
      });
      xhr.addEventListener("abort", () => {
        if (item.state !== "cancelled") setState(item, "cancelled", "Cancelled");
        finish(false);
      });
      xhr.open("POST", new URL(upload.url, window.location.href).href);
      setState(item, "uploading", "Uploading… 0%");
      progress(item, 0);
      xhr.send(form);
    });
  }

  /** S3 (and the local backend) answer refusals in XML: <Error><Code/><Message/></Error>. */
  function storageError(xhr, item) {
    let code = "";
    let message = "";
    try {
      const doc = new DOMParser().parseFromString(xhr.responseText || "", "application/xml");
      code = (doc.querySelector("Error > Code, Code") || {}).textContent || "";
      message = (doc.querySelector("Error > Message, Message") || {}).textContent || "";
    } catch {
      code = "";
    }
    code = code.trim();
    if (code === "EntityTooLarge") {
      const limit = config ? `, the limit is ${formatBytes(config.max_bytes)}` : "";
      return ["refused", `Too big: storage refused ${formatBytes(item.file.size)}${limit}`];
    }
    if (code === "EntityTooSmall") return ["refused", "Empty file: storage refused it"];
    if (code === "AccessDenied" && /expired/i.test(message)) {
      return ["failed", "The upload form expired; retry"];
    }
    const detail = code ? ` (${code})` : ` (HTTP ${xhr.status})`;
    return ["failed", `Storage refused the upload${detail}`];
  }

  async function complete(item, run) {
    const upload = item.upload;
    item.verifyOnly = false;
    setState(item, "verifying", "Verifying…");
    item.controller = new AbortController();
    const result = await api("POST", `/api/uploads/${encodeURIComponent(upload.id)}/complete`, {}, item.controller.signal);
    item.controller = null;
    const image = result.ok && result.data ? result.data.image : null;
    if (image) addToGallery(image); // even if the row was removed meanwhile: the image is stored
    if (item.run !== run) return;
    if (result.ok) {
      let message = "Done";
      if (image && image.width && image.height) message += ` · ${image.width} × ${image.height}`;
      setState(item, "done", message);
      return;
    }
    if (result.status === 422) {
      setState(item, "rejected", `Rejected: ${result.message}`);
      return;
    }
    // Storage holds the file; a later retry only needs to ask again, unless the server lost it.
    item.verifyOnly = result.status !== 404;
    item.needsToken = result.status === 401;
    setState(item, "failed", `Could not verify the upload: ${result.message}`);
  }

  function progress(item, fraction) {
    const percent = Math.max(0, Math.min(100, Math.round(fraction * 100)));
    item.parts.fill.style.width = `${percent}%`;
    item.parts.bar.setAttribute("aria-valuenow", String(percent));
    if (item.state === "uploading") item.parts.message.textContent = `Uploading… ${percent}%`;
  }

  function setState(item, state, message, { quiet = false } = {}) {
    const changed = item.state !== state;
    item.state = state;
    const { parts } = item;
    item.el.dataset.state = state;
    parts.message.textContent = message;
    const busy = ACTIVE.has(state);
    parts.cancel.hidden = !busy || state === "verifying";
    parts.retry.hidden = !(state === "failed" || state === "cancelled");
    parts.remove.hidden = busy;
    parts.bar.hidden = !(state === "uploading" || state === "verifying");
    if (state === "verifying") {
      parts.bar.removeAttribute("aria-valuenow");
      parts.bar.setAttribute("aria-valuetext", "Verifying");
    } else {
      parts.bar.removeAttribute("aria-valuetext");
      if (!parts.bar.hasAttribute("aria-valuenow")) parts.bar.setAttribute("aria-valuenow", "0");
    }
    if (!quiet && (changed || !busy)) announce(`${item.file.name}: ${message}`);
    updateSummary();
  }

  function cancel(item) {
    if (!ACTIVE.has(item.state) || item.state === "verifying") return;
    setState(item, "cancelled", "Cancelled");
    const waitingAt = waiting.indexOf(item);
    if (waitingAt >= 0) waiting.splice(waitingAt, 1);
    if (item.controller) item.controller.abort();
    if (item.xhr) item.xhr.abort();
    item.parts.retry.focus();
  }

  function retry(item) {
    if (item.state !== "failed" && item.state !== "cancelled") return;
    item.state = "queued";
    if (!item.verifyOnly) item.upload = null;
    enqueue(item);
    item.parts.cancel.focus();
  }

  function remove(item) {
    if (ACTIVE.has(item.state)) cancel(item);
    item.removed = true;
    const at = items.indexOf(item);
    const next = items[at + 1] || items[at - 1];
    if (at >= 0) items.splice(at, 1);
    item.run += 1;
    item.el.remove();
    if (item.previewUrl) URL.revokeObjectURL(item.previewUrl);
    if (!items.length) ui.queue.hidden = true;
    updateSummary();
    const focusTarget = next && next.el.querySelector(".file-actions button:not([hidden])");
    (focusTarget || ui.dropzone).focus();
  }

  function updateSummary() {
    const count = { done: 0, busy: 0, attention: 0 };
    for (const item of items) {
      if (item.state === "done") count.done += 1;
      else if (ACTIVE.has(item.state)) count.busy += 1;
      else if (item.state !== "cancelled") count.attention += 1;
    }
    const parts = [];
    if (count.busy) parts.push(`${count.busy} in progress`);
    if (count.done) parts.push(`${count.done} done`);
    if (count.attention) parts.push(`${count.attention} not uploaded`);
    ui.summary.textContent = parts.join(" · ");
    ui.clearFinished.hidden = !items.some((item) => FINISHED.has(item.state));
  }

  ui.clearFinished.addEventListener("click", () => {
    for (const item of items.slice()) if (FINISHED.has(item.state)) remove(item);
  });

  window.addEventListener("beforeunload", (event) => {
    if (items.some((item) => item.state === "uploading" || item.state === "verifying")) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // --- ways in: picker, keyboard, drag and drop, paste -----------------------------------------

  ui.input.addEventListener("change", () => {
    addFiles(ui.input.files);
    ui.input.value = "";
  });

  ui.dropzone.addEventListener("click", (event) => {
    if (event.target.closest("label")) return; // the label opens the picker itself
    ui.input.click();
  });

  // Like a native button: Enter opens the picker on keydown, Space on keyup (browsers only let
  // a page open a file picker from a user gesture, and a Space keydown does not count as one).
  ui.dropzone.addEventListener("keydown", (event) => {
    if (event.target !== ui.dropzone) return;
    if (event.key === "Enter" && !event.repeat) {
      event.preventDefault();
      ui.input.click();
    } else if (event.key === " ") {
      event.preventDefault(); // no page scroll
    }
  });
  ui.dropzone.addEventListener("keyup", (event) => {
    if (event.target !== ui.dropzone || event.key !== " ") return;
    event.preventDefault();
    ui.input.click();
  });

  const carriesFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  let dragDepth = 0;

  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    document.body.classList.add("is-dragging");
  });
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    ui.dropzone.classList.toggle("is-over", ui.dropzone.contains(event.target));
  });
  document.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) endDrag();
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault(); // a file dropped anywhere must not replace the page
    endDrag();
    if (event.dataTransfer.files && event.dataTransfer.files.length) addFiles(event.dataTransfer.files);
  });

  function endDrag() {
    dragDepth = 0;
    document.body.classList.remove("is-dragging");
    ui.dropzone.classList.remove("is-over");
  }

  document.addEventListener("paste", (event) => {
    const data = event.clipboardData;
    if (!data) return;
    let files = Array.from(data.files || []);
    if (!files.length) {
      files = Array.from(data.items || [])
        .filter((entry) => entry.kind === "file")
        .map((entry) => entry.getAsFile())
        .filter(Boolean);
    }
    if (!files.length) return;
    event.preventDefault();
    addFiles(files.map(namePasted));
    announce(files.length === 1 ? "Pasted 1 file" : `Pasted ${files.length} files`);
  });

  /** Clipboard images are all called "image.png"; give each a name worth keeping. */
  function namePasted(file) {
    if (file.name && file.name !== "image.png") return file;
    const stamp = new Date().toISOString().slice(0, 19).replace("T", " ").replace(/:/g, ".");
    const ext = (TYPE_EXTENSIONS[file.type] || [".png"])[0];
    return new File([file], `Pasted ${stamp}${ext}`, { type: file.type, lastModified: file.lastModified });
  }

  // --- gallery ---------------------------------------------------------------------------------

  const gallery = { cursor: null, ids: new Set(), loading: false, available: true, images: new Map() };

  async function loadGallery() {
    if (gallery.loading) return;
    gallery.loading = true;
    ui.loadMore.disabled = true;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (gallery.cursor) query.set("cursor", gallery.cursor);
    const result = await api("GET", `/api/images?${query}`);
    gallery.loading = false;
    ui.loadMore.disabled = false;
    if (!result.ok || !result.data || !Array.isArray(result.data.images)) {
      gallery.available = gallery.ids.size > 0;
      ui.galleryStatus.textContent = `Could not load your images: ${result.message || "unexpected answer"}`;
      ui.galleryStatus.dataset.kind = "error";
      ui.galleryStatus.hidden = false;
      return;
    }
    gallery.available = true;
    for (const image of result.data.images) appendTile(image);
    gallery.cursor = result.data.next_cursor || null;
    ui.loadMore.hidden = !gallery.cursor;
    updateGallery();
  }

  function addToGallery(image) {
    if (gallery.ids.has(image.id)) return;
    const tile = buildTile(image);
    ui.gallery.prepend(tile);
    updateGallery();
  }

  function appendTile(image) {
    if (gallery.ids.has(image.id)) return;
    ui.gallery.append(buildTile(image));
  }

  function uploadedText(image) {
    const when = new Date(image.uploaded_at);
    if (!image.uploaded_at || Number.isNaN(when.getTime())) return "";
    return when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  /** The upload time, short enough for a tile: "28 Nov, 16:23" this year, "3 Mar 2025" before. */
  function tileDate(image) {
    const when = new Date(image.uploaded_at);
    if (!image.uploaded_at || Number.isNaN(when.getTime())) return "";
    const thisYear = when.getFullYear() === new Date().getFullYear();
    const style = thisYear
      ? { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }
      : { day: "numeric", month: "short", year: "numeric" };
    return when.toLocaleString(undefined, style);
  }

  /** An image without its filename (gallery pages do not carry it): its size and upload time. */
  function imageDescription(image) {
    const parts = [];
    if (image.width && image.height) parts.push(`${image.width} × ${image.height}`);
    const when = uploadedText(image);
    if (when) parts.push(`uploaded ${when}`);
    return parts.length ? `Image ${parts.join(", ")}` : `Image ${image.id}`;
  }

  /** How the viewer and messages name an image: its original filename once known. */
  function imageLabel(image) {
    return image.filename || imageDescription(image);
  }

  function imageFacts(image, { long = false } = {}) {
    const facts = [];
    if (long && image.format) facts.push(String(image.format).toUpperCase());
    if (image.width && image.height) facts.push(`${image.width} × ${image.height}`);
    if (typeof image.bytes === "number") facts.push(formatBytes(image.bytes));
    if (long && image.uploaded_at) {
      const when = new Date(image.uploaded_at);
      if (!Number.isNaN(when.getTime())) {
        facts.push(`uploaded ${when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })}`);
      }
    }
    return facts.join(" · ");
  }

  function buildTile(image) {
    gallery.ids.add(image.id);
    gallery.images.set(image.id, image);
    const tile = ui.tileTemplate.content.firstElementChild.cloneNode(true);
    const label = imageDescription(image); // tiles look alike whether or not the name is known
    tile.dataset.id = image.id;
    const img = tile.querySelector(".tile-img");
    img.src = image.thumbnail_url || image.url;
    img.alt = label;
    if (image.width && image.height) {
      img.width = image.width;
      img.height = image.height;
    }
    tile.querySelector(".tile-name").textContent = tileDate(image) || label;
    tile.querySelector(".tile-name").title = label;
    tile.querySelector(".tile-meta").textContent = imageFacts(image);
    const open = tile.querySelector(".tile-open");
    open.setAttribute("aria-label", `View ${label}`);
    open.addEventListener("click", () => openViewer(image.id, open));
    const del = tile.querySelector(".tile-delete");
    del.setAttribute("aria-label", `Delete ${label}`);
    del.addEventListener("click", () => askDelete(image.id, del));
    return tile;
  }

  function updateGallery() {
    const count = gallery.ids.size;
    if (count === 0) {
      ui.galleryStatus.textContent = "No images yet. Images you upload appear here.";
      ui.galleryStatus.dataset.kind = "empty";
      ui.galleryStatus.hidden = false;
    } else {
      ui.galleryStatus.hidden = true;
      ui.galleryStatus.dataset.kind = "";
    }
    const more = gallery.cursor ? "+" : "";
    ui.galleryCount.textContent = count ? `${count}${more} ${count === 1 && !more ? "image" : "images"}` : "";
  }

  ui.loadMore.addEventListener("click", () => loadGallery());

  // --- viewer and delete -----------------------------------------------------------------------

  let viewing = null;
  let returnFocus = null;

  /** Show an image in the viewer at once, then ask the server for its filename (gallery pages do
   * not carry it: GET /api/images/{id}), unless it is known already. */
  async function openViewer(id, opener) {
    const image = gallery.images.get(id);
    if (!image) return;
    viewing = id;
    returnFocus = opener;
    ui.viewerImg.src = image.url;
    if (image.width && image.height) {
      ui.viewerImg.width = image.width;
      ui.viewerImg.height = image.height;
    }
    describeInViewer(image);
    ui.viewer.showModal();
    ui.viewerClose.focus();
    if (image.filename) return;
    const result = await api("GET", `/api/images/${encodeURIComponent(id)}`);
    const full = result.ok && result.data ? result.data.image : null;
    if (!full || !gallery.images.has(id)) return; // the gallery's facts stay; deleted meanwhile
    gallery.images.set(id, full);
    if (viewing === id) describeInViewer(full);
  }

  function describeInViewer(image) {
    const label = imageLabel(image);
    ui.viewerImg.alt = label;
    ui.viewerTitle.textContent = label;
    ui.viewerFacts.textContent = imageFacts(image, { long: true });
    ui.viewerOpen.href = image.url; // with a filename, storage serves it under that name
  }

  ui.viewerClose.addEventListener("click", () => ui.viewer.close());
  ui.viewer.addEventListener("click", (event) => {
    if (event.target === ui.viewer) ui.viewer.close(); // a click on the backdrop
  });
  ui.viewer.addEventListener("close", () => {
    viewing = null;
    ui.viewerImg.removeAttribute("src");
    if (returnFocus && returnFocus.isConnected) returnFocus.focus();
  });
  ui.viewerDelete.addEventListener("click", () => {
    if (viewing) askDelete(viewing, ui.viewerDelete);
  });

  let deleting = null;
  let confirmReturnFocus = null;

  function askDelete(id, opener) {
    const image = gallery.images.get(id);
    if (!image) return;
    deleting = id;
    confirmReturnFocus = opener;
    ui.confirmText.textContent = `“${imageLabel(image)}” and its thumbnail will be removed from storage. This cannot be undone.`;
    ui.confirmError.hidden = true;
    ui.confirmDelete.disabled = false;
    ui.confirm.showModal();
    ui.confirmCancel.focus();
  }

  ui.confirm.addEventListener("close", () => {
    deleting = null;
    if (confirmReturnFocus && confirmReturnFocus.isConnected) confirmReturnFocus.focus();
  });

  ui.confirmDelete.addEventListener("click", async () => {
    const id = deleting;
    if (!id) return;
    const image = gallery.images.get(id);
    ui.confirmDelete.disabled = true;
    ui.confirmError.hidden = true;
    const result = await api("DELETE", `/api/images/${encodeURIComponent(id)}`);
    ui.confirmDelete.disabled = false;
    if (!result.ok && result.status !== 404) {
      ui.confirmError.textContent = `Could not delete: ${result.message}`;
      ui.confirmError.hidden = false;
      return;
    }
    removeTile(id);
    confirmReturnFocus = null;
    ui.confirm.close();
    if (viewing === id) {
      returnFocus = null;
      ui.viewer.close();
    }
    announce(`Deleted ${image ? imageLabel(image) : "the image"}`);
    el("gallery-title").focus();
  });

  function removeTile(id) {
    const tile = ui.gallery.querySelector(`.tile[data-id="${CSS.escape(id)}"]`);
    if (tile) tile.remove();
    gallery.ids.delete(id);
    gallery.images.delete(id);
    updateGallery();
  }

  loadGallery();
})();
