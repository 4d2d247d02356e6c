/* <s3drop-uploader>: the s3drop image uploader as a standard custom element.
 *
 * One module, no build step, no inline code or style (it runs under a strict Content-Security-Policy:
 * its styles are a constructed stylesheet, its markup a static template):
 *
 *   <script type="module" src="https://uploads.example.com/static/s3drop-uploader.js"></script>
 *   <s3drop-uploader name="photos" multiple></s3drop-uploader>
 *
 * Flow per file: check type and size against the server's settings ({api}/config) -> downscale
 * (only when the server sets client_max_side: a larger image is resized here, orientation applied,
 * and that copy is what is sent) -> hash (SHA-256, WebCrypto) -> POST {api}/uploads (sign; a 409
 * already_uploaded means the same bytes are already in the caller's gallery: nothing is sent, the
 * row says "Already in your gallery") -> POST the signed form straight to storage
 * (XMLHttpRequest, for upload progress) -> POST {api}/uploads/{id}/complete (the server verifies the
 * bytes) -> the image is accepted.
 *
 * Each file row carries data-state: queued | uploading | verifying | done | rejected | failed |
 * cancelled | refused (never left the browser, or the server would not sign it), and a .message.
 *
 * Events (all bubble and cross shadow roots; `event.detail` is documented in the README):
 *   s3drop:ready         the server's settings arrived: {config}
 *   s3drop:add           files are about to join the list (cancelable: the host may refuse): {files}
 *   s3drop:progress      a file changed state or made progress: {file, state, percent, message}
 *   s3drop:accepted      the server verified and stored a file: {file, image, duplicate}; duplicate
 *                        is true when signing found the same bytes already in the gallery (the
 *                        image is that one, and no byte was sent). The image's srcset, sizes and
 *                        sources (one {type, srcset} per variant type, AVIF first) are ready for an
 *                        <img srcset sizes> or a <picture>, their URLs absolute
 *   s3drop:rejected      a file was refused for good, here or by the server: {file, code, message}
 *   s3drop:failed        a file did not make it and may be retried: {file, code, message, status}
 *   s3drop:removed       a file left the list (its id leaves the form value): {file, image}
 *   s3drop:unauthorized  the API wants credentials: {challenge, sentCredentials}
 *   change               the value (accepted ids) changed, as form controls do
 */

const HASH_LIMIT = 512 * 1024 * 1024; // bigger files are sent without a checksum
const PREVIEW_LIMIT = 40 * 1024 * 1024; // bigger files get a badge, not a decoded preview
const MAX_PARALLEL = 3;
const LOG_KEEP = 5; // sentences the live region keeps (older ones were read already)
const ACTIVE = new Set(["queued", "uploading", "verifying"]);
const FINISHED = new Set(["done", "rejected", "refused", "cancelled"]);

// --- sizes, written one way everywhere ---------------------------------------------------------

const UNITS = ["KiB", "MiB", "GiB", "TiB"];

/** One decimal, ties to even (as Python's format does). `size * 10 / 1024 ** k` is exact in a
 * double for any size below 2^49, so this agrees with Python's `f"{value:.1f}"` digit for digit. */
function tenths(size, power) {
  const scaled = (size * 10) / 1024 ** power;
  let whole = Math.floor(scaled);
  const rest = scaled - whole;
  if (rest > 0.5 || (rest === 0.5 && whole % 2 === 1)) whole += 1;
  return whole;
}

/** Bytes for people: IEC binary units, at most one decimal, `.0` dropped (`512 bytes`,
 * `195.3 KiB`, `10 MiB`, `12.6 MiB`). The server's `s3drop._units.format_size` is the same rule. */
export function formatSize(size) {
  if (size < 1024) return size === 1 ? "1 byte" : `${size} bytes`;
  let power = 1;
  while (power < UNITS.length && tenths(size, power) >= 10240) power += 1;
  const value = tenths(size, power);
  const text = value % 10 === 0 ? String(value / 10) : `${Math.floor(value / 10)}.${value % 10}`;
  return `${text} ${UNITS[power - 1]}`;
}

// --- placeholders, painted while an image loads ---------------------------------------------------

let thumbhashDecoder = null;

/** The ThumbHash decoder (thumbhash.js beside this module, Evan Wallace's reference), loaded on
 * first use; null where it cannot be loaded (the colour alone is painted then). */
function loadThumbhash() {
  thumbhashDecoder ||= import("./thumbhash.js").catch(() => null);
  return thumbhashDecoder;
}

/** A tiny PNG data URL of an image's ThumbHash (the API's `placeholder`: `{thumbhash, color}`),
 * or null when there is none or it cannot be decoded. */
export async function placeholderURL(placeholder) {
  if (!placeholder || !placeholder.thumbhash) return null;
  const decoder = await loadThumbhash();
  if (!decoder) return null;
  try {
    const bytes = Uint8Array.from(atob(placeholder.thumbhash), (ch) => ch.charCodeAt(0));
    return decoder.thumbHashToDataURL(bytes);
  } catch {
    return null;
  }
}

/** Paint an image's placeholder behind `img` while it loads: the dominant colour at once, the
 * ThumbHash's blurred picture as soon as it is decoded (a few milliseconds); both go when the
 * image has loaded, so a transparent image shows what is behind it. Call it before setting `src`.
 * Images promoted before placeholders existed have `placeholder: null`: nothing is painted. */
export function paintPlaceholder(img, placeholder) {
  const style = img.style;
  const clear = () => {
    delete img.dataset.placeholder;
    style.removeProperty("background-color");
    style.removeProperty("background-image");
    style.removeProperty("background-size");
    style.removeProperty("background-position");
  };
  clear();
  if (!placeholder || !placeholder.color) return;
  const token = String(Math.random());
  img.dataset.placeholder = token;
  style.backgroundColor = placeholder.color;
  style.backgroundSize = "cover";
  style.backgroundPosition = "center";
  img.addEventListener("load", () => img.dataset.placeholder === token && clear(), { once: true });
  placeholderURL(placeholder).then((url) => {
    if (url && img.dataset.placeholder === token) style.backgroundImage = `url("${url}")`;
  });
}

// --- the shadow tree ---------------------------------------------------------------------------

const ICON_UPLOAD =
  '<svg class="dropzone-icon" part="icon" viewBox="0 0 48 48" aria-hidden="true" focusable="false">' +
  '<path d="M14 34h-2a9 9 0 0 1-1.4-17.9A12 12 0 0 1 34 13.4 8.5 8.5 0 0 1 36 34h-2"/>' +
  '<path d="M24 40V22m0 0-6.5 6.5M24 22l6.5 6.5"/></svg>';

const MARKUP = `
<div class="dropzone" id="dropzone" part="dropzone" role="button" tabindex="0">
  ${ICON_UPLOAD}
  <p class="dropzone-title" id="dropzone-title" part="title"><slot name="title">Drop images here, paste, or choose files</slot></p>
  <p class="dropzone-limits" id="dropzone-limits" part="limits">Loading limits…</p>
  <label class="button button-primary" part="button choose" for="file-input" id="choose-label"><slot name="button">Choose files</slot></label>
</div>
<input class="visually-hidden" type="file" id="file-input" tabindex="-1" aria-hidden="true">
<p class="config-error" id="config-error" part="error" role="alert" hidden></p>
<div class="queue" id="queue" part="queue" hidden>
  <div class="queue-head">
    <p class="queue-title" id="queue-title" part="queue-title">Uploads</p>
    <p class="queue-summary" id="queue-summary" part="summary"></p>
    <button class="button button-quiet" part="button clear" type="button" id="clear-finished" hidden>Clear finished</button>
  </div>
  <ul class="files" id="files" part="files" aria-labelledby="queue-title"></ul>
  <div class="queue-empty" id="queue-empty">
    <p class="queue-empty-title">No uploads yet</p>
    <p>Each file you add gets a row here, with its progress and the server’s check.</p>
  </div>
</div>
<div class="visually-hidden" id="live" role="log" aria-live="polite"></div>
`;

const ROW = `
<li class="file" part="file queued" data-state="queued">
  <div class="file-preview" part="preview">
    <img class="file-thumb" alt="" hidden>
    <span class="file-badge" aria-hidden="true"></span>
  </div>
  <div class="file-body">
    <div class="file-line">
      <p class="file-name" part="file-name"></p>
      <p class="file-size" part="file-size"></p>
    </div>
    <div class="bar" part="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">
      <div class="bar-fill" part="progress-fill"></div>
    </div>
    <p class="message" part="message"></p>
  </div>
  <div class="file-actions">
    <button class="button button-small cancel" part="button cancel" type="button">Cancel</button>
    <button class="button button-small retry" part="button retry" type="button" hidden>Retry</button>
    <button class="icon-button remove" part="button remove" type="button" hidden>
      <svg viewBox="0 0 20 20" aria-hidden="true" focusable="false"><path d="M5 5l10 10M15 5 5 15"/></svg>
    </button>
  </div>
</li>
`;

/** The image as the API gave it, with the URLs of its srcset and sources made absolute (the host's
 * page may be on another origin than the API), ready for a <picture>. */
function readyImage(image, base) {
  const absolute = (srcset) =>
    srcset
      .split(", ")
      .filter(Boolean)
      .map((candidate) => {
        const [url, descriptor] = candidate.split(" ");
        return `${new URL(url, base).href} ${descriptor}`;
      })
      .join(", ");
  const ready = { ...image };
  if (typeof image.srcset === "string") ready.srcset = absolute(image.srcset);
  if (Array.isArray(image.sources)) {
    ready.sources = image.sources.map((source) => ({ ...source, srcset: absolute(source.srcset) }));
  }
  return ready;
}

function template(markup) {
  const element = document.createElement("template");
  element.innerHTML = markup; // static markup only: never data
  return element;
}

const CSS = `
:host {
  --_accent: var(--s3drop-accent, light-dark(#3b5bdb, #7b93ff));
  --_accent-hover: var(--s3drop-accent-hover, light-dark(#2f4ac0, #98abff));
  --_accent-soft: var(--s3drop-accent-soft, light-dark(#edf1ff, #1d2540));
  --_focus: var(--s3drop-focus-ring, var(--_accent));
  --_on-accent: var(--s3drop-on-accent, light-dark(#fff, #0f1318));
  --_surface: var(--s3drop-surface, light-dark(#fff, #171c23));
  --_surface-2: var(--s3drop-surface-2, light-dark(#f1f3f6, #1e242d));
  --_border: var(--s3drop-border, light-dark(#e2e6ec, #2a313c));
  --_border-strong: var(--s3drop-border-strong, light-dark(#cdd3dc, #3a4250));
  --_text: var(--s3drop-text, light-dark(#18202b, #e8ebf0));
  --_text-2: var(--s3drop-text-2, light-dark(#566173, #a6afbd));
  --_text-3: var(--s3drop-text-3, light-dark(#5f6a79, #8a93a1));
  --_ok: var(--s3drop-ok, light-dark(#1e7a46, #5cc98b));
  --_warn: var(--s3drop-warn, light-dark(#9a5b00, #f0b45b));
  --_bad: var(--s3drop-bad, light-dark(#b42318, #ff8a80));
  --_muted-soft: light-dark(#eef0f3, #232a33);
  --_radius: var(--s3drop-radius, 14px);
  --_radius-sm: var(--s3drop-radius-small, 9px);
  --_shadow: light-dark(0 1px 2px rgb(16 24 40 / 0.05), 0 1px 2px rgb(0 0 0 / 0.4));
  display: block;
  color: var(--_text);
  font-family: var(--s3drop-font, inherit);
  font-size: var(--s3drop-font-size, inherit);
  line-height: 1.5;
}
:host([hidden]) { display: none; }
:host([theme="light"]) { color-scheme: light; }
:host([theme="dark"]) { color-scheme: dark; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
p { margin: 0; }
svg, img { display: block; }
button, input, label { font: inherit; color: inherit; }
/* A solid 3 px ring (3:1 against what it covers, in light and dark), an outline so that forced
 * colours keep it. */
:focus-visible { outline: 3px solid var(--_focus); outline-offset: 2px; }
/* A theme unlike the page's brings its own surface, or its text would sit on the page's. */
:host([theme]) { background: var(--_surface); border-radius: var(--_radius); }
:host([theme]) .queue { padding: 0 12px 12px; }
.visually-hidden {
  position: absolute !important; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;
  overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap;
}
.button {
  display: inline-flex; align-items: center; justify-content: center; gap: 6px;
  min-height: 38px; padding: 0 16px; border: 1px solid var(--_border-strong);
  border-radius: var(--_radius-sm); background: var(--_surface); color: var(--_text);
  font-weight: 600; font-size: 0.92em; white-space: nowrap; cursor: pointer;
  transition: background-color 0.15s, border-color 0.15s;
}
.button:hover { background: var(--_surface-2); }
.button-primary { border-color: var(--_accent); background: var(--_accent); color: var(--_on-accent); box-shadow: var(--_shadow); }
.button-primary:hover { border-color: var(--_accent-hover); background: var(--_accent-hover); }
.button-quiet { border-color: transparent; background: transparent; color: var(--_text-2); }
.button-quiet:hover { background: var(--_muted-soft); color: var(--_text); }
.button-small { min-height: 32px; padding: 0 12px; font-size: 0.85em; }
.icon-button {
  display: inline-grid; place-items: center; width: 32px; height: 32px; padding: 0;
  border: 1px solid transparent; border-radius: var(--_radius-sm); background: transparent;
  color: var(--_text-3); cursor: pointer;
}
.icon-button:hover { background: var(--_muted-soft); color: var(--_text); }
.icon-button svg { width: 18px; height: 18px; fill: none; stroke: currentColor; stroke-width: 1.8; stroke-linecap: round; }

.dropzone {
  display: flex; flex-direction: column; align-items: center; gap: 10px;
  padding: var(--s3drop-dropzone-padding, 48px 24px 44px);
  border: 2px dashed var(--_border-strong); border-radius: var(--_radius);
  background: var(--_surface); text-align: center; cursor: pointer;
  transition: border-color 0.15s, background-color 0.15s, transform 0.15s;
}
.dropzone:hover { border-color: var(--_accent); }
.dropzone:focus-visible { outline: 3px solid var(--_focus); outline-offset: 3px; border-color: var(--_accent); }
.dropzone.is-dragging { border-color: var(--_accent); background: var(--_accent-soft); }
.dropzone.is-over { transform: scale(1.01); border-style: solid; }
:host([disabled]) .dropzone { opacity: 0.55; cursor: not-allowed; }
.dropzone-icon {
  width: 52px; height: 52px; margin-bottom: 4px; padding: 10px; border-radius: 50%;
  background: var(--_accent-soft); fill: none; stroke: var(--_accent); stroke-width: 2.2;
  stroke-linecap: round; stroke-linejoin: round;
}
.dropzone-title { font-size: 1.25em; font-weight: 650; letter-spacing: -0.01em; }
.dropzone-limits { min-height: 1.5em; margin-bottom: 10px; color: var(--_text-2); font-size: 0.92em; }
.config-error {
  margin-top: 12px; padding: 10px 14px; border-radius: var(--_radius-sm);
  background: color-mix(in srgb, var(--_bad) 12%, var(--_surface)); color: var(--_bad);
}

.queue { margin-top: 20px; }
.queue-head { display: flex; align-items: center; gap: 12px; min-height: 38px; margin-bottom: 10px; }
.queue-title { font-size: 1.05em; font-weight: 650; }
.queue-summary { flex: 1; color: var(--_text-3); font-size: 0.88em; }
.files { display: grid; align-content: start; gap: 8px; margin: 0; padding: 0; list-style: none; }
.queue-empty { display: none; }
/* queue-rows="N": room for N rows is kept from the start (more scroll), so nothing below moves.
 * While the list is empty that room holds a note (plain text where it stands, not announced), in
 * the same grid cell as the list, which keeps the height and leaves the accessibility tree. */
:host([queue-rows]) .queue { display: grid; grid-template-columns: minmax(0, 1fr); }
:host([queue-rows]) .queue[hidden] { display: grid !important; }
:host([queue-rows]) .files,
:host([queue-rows]) .queue-empty { grid-row: 2; grid-column: 1; }
:host([queue-rows]) .queue[hidden] .files { visibility: hidden; }
:host([queue-rows]) .queue[hidden] .queue-empty {
  display: flex; flex-direction: column; align-items: center; justify-content: center; gap: 4px;
  padding: 16px; border: 1px dashed var(--_border); border-radius: var(--_radius-sm);
  color: var(--_text-3); text-align: center;
}
.queue-empty-title { color: var(--_text-2); font-weight: 600; }
:host([queue-rows]) .files {
  /* N rows and a glimpse of the next, so a longer list shows that it scrolls. */
  height: calc((var(--_rows, 3) + 0.4) * 86px); overflow-y: auto; padding: 3px 5px 3px 3px;
  margin: -3px -5px -3px -3px; overscroll-behavior: contain;
}
:host([queue-rows]) .file { min-height: 78px; }
.file {
  display: grid; grid-template-columns: 52px minmax(0, 1fr) auto; align-items: center; gap: 14px;
  padding: 10px 12px 10px 10px; border: 1px solid var(--_border); border-radius: var(--_radius-sm);
  background: var(--_surface); box-shadow: var(--_shadow);
}
.file-preview {
  display: grid; place-items: center; width: 52px; height: 52px; overflow: hidden;
  border-radius: 8px; background: var(--_surface-2);
}
.file-thumb { width: 100%; height: 100%; object-fit: cover; }
.file-badge { color: var(--_text-3); font-family: ui-monospace, monospace; font-size: 0.7em; font-weight: 700; }
.file-thumb:not([hidden]) + .file-badge { display: none; }
.file-body { display: grid; gap: 5px; min-width: 0; }
.file-line { display: flex; align-items: baseline; gap: 10px; min-width: 0; }
.file-name { overflow: hidden; font-weight: 600; text-overflow: ellipsis; white-space: nowrap; }
.file-size { flex: none; color: var(--_text-3); font-size: 0.85em; font-variant-numeric: tabular-nums; }
.message { display: flex; align-items: flex-start; gap: 6px; color: var(--_text-2); font-size: 0.88em; font-variant-numeric: tabular-nums; }
.message::before {
  content: ""; flex: none; width: 8px; height: 8px; margin-top: 0.42em; border-radius: 50%;
  background: var(--_text-3);
}
.bar { position: relative; height: 6px; overflow: hidden; border-radius: 999px; background: var(--_muted-soft); }
.bar-fill { width: 0; height: 100%; border-radius: inherit; background: var(--_accent); transition: width 0.2s ease-out; }
.file-actions { display: flex; align-items: center; gap: 6px; }
.file[data-state="uploading"] .message::before,
.file[data-state="verifying"] .message::before { background: var(--_accent); animation: pulse 1.2s ease-in-out infinite; }
.file[data-state="verifying"] .bar-fill { width: 35% !important; animation: sweep 1.1s ease-in-out infinite; }
.file[data-state="done"] .message { color: var(--_ok); }
.file[data-state="done"] .message::before { background: var(--_ok); }
.file[data-state="rejected"], .file[data-state="failed"] { border-color: color-mix(in srgb, var(--_bad) 30%, var(--_border)); }
.file[data-state="rejected"] .message, .file[data-state="failed"] .message { color: var(--_bad); }
.file[data-state="rejected"] .message::before, .file[data-state="failed"] .message::before { background: var(--_bad); }
.file[data-state="refused"] { border-color: color-mix(in srgb, var(--_warn) 30%, var(--_border)); }
.file[data-state="refused"] .message { color: var(--_warn); }
.file[data-state="refused"] .message::before { background: var(--_warn); }
.file[data-state="cancelled"] { background: var(--_surface-2); box-shadow: none; }
.file[data-state="cancelled"] .file-name { color: var(--_text-2); }
.file[data-state="cancelled"] .file-preview { opacity: 0.6; }
@keyframes pulse { 50% { opacity: 0.35; } }
@keyframes sweep { from { transform: translateX(-100%); } to { transform: translateX(290%); } }
@container (max-width: 480px) {
  .dropzone { padding: 32px 16px 28px; }
  .file { grid-template-columns: 44px minmax(0, 1fr) auto; gap: 10px; }
  .file-preview { width: 44px; height: 44px; }
  .file-size { display: none; }
  .file-actions { gap: 2px; }
  .queue-head { flex-wrap: wrap; row-gap: 0; }
  .queue-summary { order: 3; flex-basis: 100%; }
  .queue-title { flex: 1; }
}
.root { container-type: inline-size; }
@media (prefers-reduced-motion: reduce) {
  *, *::before, *::after { animation-duration: 0.01ms !important; animation-iteration-count: 1 !important; transition-duration: 0.01ms !important; }
}
`;

let sheet = null;
function styles() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
  }
  return sheet;
}

// --- small helpers -----------------------------------------------------------------------------

function extensionOf(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

function joinOr(names) {
  if (names.length < 2) return names[0] || "";
  return `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}`;
}

/** The server's description of each allowed type: `{type, label, extensions, family}` from `types`
 * in {api}/config (`family`: the other types, with their extensions, a file declared as this one
 * may be, as a HEIC may be declared HEIF); a server that sends only `allowed_types` gets labels made
 * from the type itself and no family. */
function describeTypes(config) {
  const described = new Map();
  for (const entry of Array.isArray(config.types) ? config.types : []) {
    if (entry && typeof entry.type === "string") described.set(entry.type, entry);
  }
  return config.allowed_types.map((type) => {
    const entry = described.get(type) || {};
    const subtype = type.split("/")[1] || type;
    return {
      type,
      label: entry.label || subtype.toUpperCase(),
      extensions: Array.isArray(entry.extensions) ? entry.extensions : [`.${subtype}`],
      family: (Array.isArray(entry.family) ? entry.family : [])
        .filter((kin) => kin && typeof kin.type === "string")
        .map((kin) => ({ type: kin.type, extensions: Array.isArray(kin.extensions) ? kin.extensions : [] })),
    };
  });
}

/** The type of `described` a file is declared as, given the browser's `type` (lowercase), or
 * when it gives none, the file's extension `ext` (".heic"): a type's own, else the one whose family
 * has it (a HEIC the browser calls image/heic is declared as the image/heif the server takes, as
 * the server accepts it). "" when none of `described` fits. */
function declaredType(described, type, ext) {
  const fits = (entry) => (type ? entry.type === type : entry.extensions.includes(ext));
  const own = described.find(fits);
  if (own) return own.type;
  const kin = described.find((entry) => entry.family.some(fits));
  return kin ? kin.type : "";
}

/** The extension (no dot) the server's description gives `type` first, else its subtype. */
function extensionFor(described, type) {
  const entry = described.find((d) => d.type === type);
  return entry && entry.extensions.length ? entry.extensions[0].replace(/^\./, "") : (type.split("/")[1] || "bin");
}

/** Does a type pass an `accept` list ("image/png", "image/*", ".png")? A token naming another of
 * its family counts (accept="image/heic" keeps the HEIF a HEIC is declared as). */
function accepts(tokens, described) {
  if (!tokens.length) return true;
  return [described, ...described.family].some((entry) =>
    tokens.some((token) => {
      if (token.startsWith(".")) return entry.extensions.includes(token);
      if (token.endsWith("/*")) return entry.type.startsWith(token.slice(0, -1));
      return token === entry.type;
    }),
  );
}


/**
 * fetch() of a JSON API: {ok, status, data, retryAfter, reference, challenge}, the body sent as
 * JSON when given. A network failure is status 0; an abort still throws. Shared by the element and
 * the bundled page, so both read every answer the same way.
 */
export async function fetchJSON(url, { method = "GET", headers = {}, body, credentials = "same-origin", signal } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const init = { method, headers: sent, credentials, signal };
  if (body !== undefined) {
    sent["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    return { ok: false, status: 0, data: null, retryAfter: "", reference: "", challenge: "" };
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  return {
    ok: response.ok,
    status: response.status,
    data,
    retryAfter: response.headers.get("Retry-After") || "",
    reference: response.headers.get("X-Request-ID") || "",
    challenge: response.status === 401 ? response.headers.get("WWW-Authenticate") || "" : "",
  };
}
/** What the server's refusal means to the person uploading: its own words for a refused request
 * (4xx), never an operator's detail for a server-side failure (5xx), which gets a reference to
 * quote when the server gives one. */
export function userMessage(result) {
  if (result.status === 0) return "Network error: the server could not be reached";
  const error = (result.data && result.data.error) || {};
  const reference = error.reference || error.request_id || result.reference || "";
  const quote = reference ? ` (reference ${reference})` : "";
  if (result.status >= 500) {
    if (result.status === 503 || error.code === "storage_unavailable") {
      return `the service is busy or down for a moment; try again shortly${quote}`;
    }
    return `something went wrong on the server; try again later${quote}`;
  }
  if (error.code === "forbidden_origin") return "this page is not allowed to upload here";
  let message = typeof error.message === "string" && error.message ? error.message : `HTTP ${result.status}`;
  if (result.retryAfter) message += `. Try again in ${result.retryAfter} s.`;
  return message;
}

async function sha256Hex(file) {
  if (!globalThis.isSecureContext || !globalThis.crypto || !globalThis.crypto.subtle) return null;
  if (file.size > HASH_LIMIT) return null;
  try {
    const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
  } catch {
    return null;
  }
}

/** A copy of an image file whose longer side is at most `maxSide` pixels, upright (EXIF orientation
 * applied by createImageBitmap), as JPEG (from a JPEG) or WebP (from anything else, keeping alpha)
 * at `quality` (1-100); where WebP is not allowed, JPEG if the picture is opaque, else a PNG stays
 * PNG. `types` are the server's allowed types as `describeTypes` gives them (the copy is named with
 * the server's extension). Null when the image is small enough already, is animated (GIF), or the
 * browser cannot decode or encode it (then the original is sent, as without downscaling). */
export async function downscale(file, type, { maxSide, quality, types }) {
  const allowed = types.map((described) => described.type);
  if (!maxSide || type === "image/gif" || typeof globalThis.createImageBitmap !== "function") return null;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return null;
  }
  try {
    const { width, height } = bitmap;
    if (Math.max(width, height) <= maxSide) return null;
    const scale = maxSide / Math.max(width, height);
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    const canvas = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(w, h) : Object.assign(document.createElement("canvas"), { width: w, height: h });
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.imageSmoothingEnabled = true;
    context.imageSmoothingQuality = "high";
    context.drawImage(bitmap, 0, 0, w, h);
    let output = type === "image/jpeg" ? "image/jpeg" : "image/webp";
    if (!allowed.includes(output)) {
      if (allowed.includes("image/jpeg") && opaque(context, w, h)) output = "image/jpeg";
      else if (type === "image/png" && allowed.includes(type)) output = type;
      else return null;
    }
    const options = { type: output, quality: Math.min(100, Math.max(1, quality || 85)) / 100 };
    const blob = canvas.convertToBlob
      ? await canvas.convertToBlob(options)
      : await new Promise((resolve) => canvas.toBlob(resolve, options.type, options.quality));
    if (!blob || blob.type !== output) return null; // the browser could not encode that type
    const ext = extensionFor(types, output);
    const stem = (file.name || "image").replace(/\.[^.]*$/, "");
    return new File([blob], `${stem}.${ext}`, { type: output, lastModified: file.lastModified });
  } catch {
    return null;
  } finally {
    bitmap.close();
  }
}

/** Whether every pixel drawn on `context` is fully opaque (then JPEG loses nothing of it). */
function opaque(context, width, height) {
  const { data } = context.getImageData(0, 0, width, height);
  for (let index = 3; index < data.length; index += 4) if (data[index] !== 255) return false;
  return true;
}

/** Clipboard images are all called "image.png"; give each a name worth keeping (an extension from
 * `described`, the server's types, when the name has none). */
function namePasted(file, described) {
  if (file.name && file.name !== "image.png") return file;
  const stamp = new Date().toISOString().slice(0, 19).replace("T", " ").replace(/:/g, ".");
  const ext = extensionOf(file.name || "") || extensionFor(described, file.type || "image/png");
  return new File([file], `Pasted ${stamp}.${ext}`, { type: file.type, lastModified: file.lastModified });
}

const carriesFiles = (event) =>
  event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");

// --- the element -------------------------------------------------------------------------------

export class S3DropUploader extends HTMLElement {
  static formAssociated = true;
  static observedAttributes = ["api", "accept", "multiple", "max-files", "name", "required", "disabled", "drop-target", "queue-rows"];

  /** Extra request headers for the API (an object, or a function returning one or a promise of
   * one): `uploader.headers = () => ({Authorization: `Bearer ${token}`})`. */
  headers = null;

  #internals;
  #ui;
  #config = null;
  #configReady = null;
  #types = [];
  #items = [];
  #waiting = [];
  #active = 0;
  #nextItem = 1;
  #dragDepth = 0;
  #listeningOn = null;

  constructor() {
    super();
    this.#internals = this.attachInternals();
    const root = this.attachShadow({ mode: "open" });
    root.adoptedStyleSheets = [styles()];
    const wrapper = document.createElement("div");
    wrapper.className = "root";
    wrapper.setAttribute("part", "root");
    wrapper.append(S3DropUploader.#markup.content.cloneNode(true));
    root.append(wrapper);
    const byId = (id) => root.getElementById(id);
    this.#ui = {
      dropzone: byId("dropzone"),
      input: byId("file-input"),
      limits: byId("dropzone-limits"),
      configError: byId("config-error"),
      queue: byId("queue"),
      files: byId("files"),
      summary: byId("queue-summary"),
      clearFinished: byId("clear-finished"),
      live: byId("live"),
    };
    this.#bindControls();
  }

  static #markup = template(MARKUP);
  static #row = template(ROW);

  // --- attributes and properties ---------------------------------------------------------------

  /** The API's base URL: the `api` attribute resolved against the page, or the `api/` folder next
   * to this module's `static/` folder (where the app that serves it mounted its API). */
  get apiBase() {
    const attribute = this.getAttribute("api");
    const base = attribute ? new URL(attribute, document.baseURI) : new URL("../api/", import.meta.url);
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    return base;
  }

  get config() {
    return this.#config;
  }

  /** The images accepted so far (the API's JSON for each), in the order they were added. */
  get images() {
    return this.#items.filter((item) => item.image && !item.removed).map((item) => item.image);
  }

  /** The accepted image ids: what a form submit carries under `name`. */
  get value() {
    return this.images.map((image) => image.id);
  }

  get name() {
    return this.getAttribute("name") || "";
  }

  get form() {
    return this.#internals.form;
  }

  get validity() {
    return this.#internals.validity;
  }

  get validationMessage() {
    return this.#internals.validationMessage;
  }

  get willValidate() {
    return this.#internals.willValidate;
  }

  checkValidity() {
    return this.#internals.checkValidity();
  }

  reportValidity() {
    return this.#internals.reportValidity();
  }

  get #multiple() {
    return this.hasAttribute("multiple");
  }

  get #maxFiles() {
    const parsed = Number.parseInt(this.getAttribute("max-files") || "", 10);
    if (Number.isFinite(parsed) && parsed > 0) return this.#multiple ? parsed : 1;
    return this.#multiple ? Infinity : 1;
  }

  get #disabled() {
    return this.hasAttribute("disabled") || this.matches(":disabled");
  }

  connectedCallback() {
    if (!this.#configReady) this.#configReady = this.#loadConfig();
    this.#listen();
    window.addEventListener("beforeunload", this.#beforeUnload);
    this.#updateValue();
  }

  disconnectedCallback() {
    this.#unlisten();
    window.removeEventListener("beforeunload", this.#beforeUnload);
  }

  /** Leaving the page while bytes are on their way asks first. */
  #beforeUnload = (event) => {
    if (this.#items.some((item) => item.state === "uploading" || item.state === "verifying")) {
      event.preventDefault();
      event.returnValue = "";
    }
  };

  attributeChangedCallback(name, previous, current) {
    if (previous === current) return;
    if (name === "api" && this.isConnected) {
      this.#config = null;
      this.#configReady = this.#loadConfig();
    } else if (name === "accept" || name === "multiple" || name === "max-files") {
      this.#applyConfig();
    } else if (name === "drop-target" && this.isConnected) {
      this.#unlisten();
      this.#listen();
    } else if (name === "queue-rows") {
      const rows = Number.parseInt(current || "", 10);
      if (Number.isFinite(rows) && rows > 0) this.style.setProperty("--_rows", String(rows));
      else this.style.removeProperty("--_rows");
    } else if (name === "disabled") {
      this.#ui.dropzone.setAttribute("aria-disabled", String(this.#disabled));
    }
    this.#updateValue();
  }

  formResetCallback() {
    this.clear();
  }

  formDisabledCallback(disabled) {
    this.#ui.dropzone.setAttribute("aria-disabled", String(disabled));
  }

  // --- public methods --------------------------------------------------------------------------

  /** Add files as if the user had chosen them (a FileList or an array of File). */
  addFiles(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length || this.#disabled) return;
    // The host may look first and say no (a cancelable event, as <file-attachment> does).
    const add = new CustomEvent("s3drop:add", { detail: { files }, bubbles: true, composed: true, cancelable: true });
    if (!this.dispatchEvent(add)) return;
    if (!this.#multiple) {
      for (const item of this.#items.slice()) this.#remove(item, { focus: false });
      files.splice(1);
    }
    for (const file of files) {
      const item = this.#createItem(file);
      this.#items.push(item);
      this.#ui.files.append(item.el);
      this.#configReady.then(() => this.#admit(item));
    }
    this.#ui.queue.hidden = false;
    this.#updateSummary();
  }

  /** Retry every file that failed (after signing in, for instance). */
  retryFailed() {
    for (const item of this.#items.slice()) if (item.state === "failed") this.#retry(item, { focus: false });
  }

  /** Empty the list (accepted images stay stored; their ids leave the form value). */
  clear() {
    for (const item of this.#items.slice()) this.#remove(item, { focus: false });
  }

  /** Read the server's settings again (after signing in, for instance). */
  reload() {
    this.#configReady = this.#loadConfig();
    return this.#configReady;
  }

  /** Say one short sentence through the element's live region (a polite log: each sentence is
   * read on its own, none is merged with another or read again; the last few stay). */
  announce(text) {
    const line = document.createElement("p");
    line.textContent = text;
    this.#ui.live.append(line);
    while (this.#ui.live.childElementCount > LOG_KEEP) this.#ui.live.firstElementChild.remove();
  }

  // --- events ----------------------------------------------------------------------------------

  #emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true }));
  }

  // --- the API ---------------------------------------------------------------------------------

  async #headers() {
    const extra = typeof this.headers === "function" ? await this.headers() : this.headers;
    return extra && typeof extra === "object" ? { ...extra } : {};
  }

  /** A JSON API call ({@link fetchJSON}); a 401 tells the host (s3drop:unauthorized). */
  async #api(method, path, body, signal) {
    const headers = await this.#headers();
    const sentCredentials = Object.keys(headers).some((name) => name.toLowerCase() === "authorization");
    const credentials = this.getAttribute("credentials") || "same-origin";
    const result = await fetchJSON(new URL(path, this.apiBase), { method, headers, body, credentials, signal });
    if (result.status === 401) this.#emit("s3drop:unauthorized", { challenge: result.challenge, sentCredentials });
    return result;
  }

  async #loadConfig() {
    const ui = this.#ui;
    ui.configError.hidden = true;
    const result = await this.#api("GET", "config");
    const config = result.data;
    if (!result.ok || !config || !Array.isArray(config.allowed_types)) {
      ui.limits.textContent = "";
      const why = result.ok ? "the server sent no settings" : userMessage(result);
      ui.configError.textContent = `Uploads are unavailable: ${why}`;
      ui.configError.hidden = false;
      this.#config = null;
      return null;
    }
    this.#config = config;
    this.#applyConfig();
    this.#setState("ready", true);
    this.#emit("s3drop:ready", { config });
    return config;
  }

  /** The input's accept list, the limits line and the allowed types, from the server's settings
   * narrowed by the `accept` attribute. */
  #applyConfig() {
    const ui = this.#ui;
    ui.input.multiple = this.#multiple;
    ui.dropzone.querySelector("slot[name=button]").textContent = this.#multiple ? "Choose files" : "Choose a file";
    if (!this.#config) return;
    const tokens = (this.getAttribute("accept") || "")
      .split(",")
      .map((token) => token.trim().toLowerCase())
      .filter(Boolean);
    this.#types = describeTypes(this.#config).filter((described) => accepts(tokens, described));
    // The picker offers a type's family too: a .heic where the server takes HEIF.
    ui.input.accept = this.#types
      .flatMap((described) => [described, ...described.family])
      .flatMap((entry) => [entry.type, ...entry.extensions])
      .join(",");
    const count = this.#maxFiles === Infinity ? "" : ` · ${this.#maxFiles === 1 ? "one file" : `up to ${this.#maxFiles} files`}`;
    ui.limits.textContent = `${joinOr(this.#types.map((d) => d.label))} · up to ${formatSize(this.#config.max_bytes)} each${count}`;
  }

  #setState(name, on) {
    try {
      if (on) this.#internals.states.add(name);
      else this.#internals.states.delete(name);
    } catch {
      // CustomStateSet is missing in older browsers: styling hooks only.
    }
  }

  // --- the upload queue ------------------------------------------------------------------------

  #createItem(file) {
    const row = S3DropUploader.#row.content.firstElementChild.cloneNode(true);
    const item = {
      id: this.#nextItem++,
      file,
      type: this.#fileType(file),
      el: row,
      state: "new",
      run: 0,
      sha256: undefined,
      sent: undefined, // the File sent: the original, or its downscaled copy (see downscale)
      controller: null,
      xhr: null,
      upload: null,
      image: null,
      admitted: false,
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
    parts.size.textContent = formatSize(file.size);
    parts.badge.textContent = (extensionOf(file.name) || "file").slice(0, 4).toUpperCase();
    parts.bar.setAttribute("aria-label", `Upload progress of ${file.name}`);
    parts.cancel.setAttribute("aria-label", `Cancel upload of ${file.name}`);
    parts.retry.setAttribute("aria-label", `Retry upload of ${file.name}`);
    parts.remove.setAttribute("aria-label", `Remove ${file.name} from the list`);
    parts.cancel.addEventListener("click", () => this.#cancel(item));
    parts.retry.addEventListener("click", () => this.#retry(item));
    parts.remove.addEventListener("click", () => this.#remove(item));
    if (file.type.startsWith("image/") && file.size > 0 && file.size <= PREVIEW_LIMIT) {
      item.previewUrl = URL.createObjectURL(file);
      parts.thumb.addEventListener("load", () => {
        parts.thumb.hidden = false;
      });
      parts.thumb.addEventListener("error", () => {
        parts.thumb.hidden = true;
      });
      parts.thumb.src = item.previewUrl;
    }
    this.#show(item, "queued", "Queued", { quiet: true });
    return item;
  }

  /** The type the file is declared as: the browser's, or from its extension when the browser gives
   * none, by the server's list; declared as the allowed member of its family where the server takes
   * that one (see declaredType). Before the settings are in, the browser's type as it is. */
  #fileType(file) {
    const type = (file.type || "").toLowerCase();
    if (!this.#config) return type;
    const ext = `.${extensionOf(file.name || "")}`;
    return declaredType(this.#types, type, ext) || declaredType(describeTypes(this.#config), type, ext) || type;
  }

  /** Check the file against the server's settings; queue it, or refuse it here. */
  #admit(item) {
    if (item.state !== "queued" || item.removed) return;
    item.type = this.#fileType(item.file); // by the settings, now they are in
    const refusal = this.#checkFile(item);
    if (refusal) {
      this.#refuse(item, refusal.code, refusal.message);
      return;
    }
    this.#enqueue(item);
  }

  #checkFile(item) {
    const config = this.#config;
    if (!config) {
      return { code: "no_settings", message: "Cannot check this file: the server's settings could not be loaded" };
    }
    if (!this.#types.some((described) => described.type === item.type)) {
      const allowed = this.#types.map((d) => d.label).join(", ");
      return { code: "type_not_allowed", message: `Not an allowed type: ${item.type || "unknown"}. Allowed: ${allowed}` };
    }
    if (item.file.size === 0) return { code: "file_empty", message: "Empty file: there is nothing to upload" };
    // A file the settings have downscaled first is judged by the copy it sends (#process).
    if (item.file.size > config.max_bytes && !this.#mayDownscale(item)) {
      return {
        code: "file_too_large",
        message: `Too big: ${formatSize(item.file.size)}, the limit is ${formatSize(config.max_bytes)}`,
      };
    }
    // Files that passed this check count until they are refused, rejected or cancelled.
    const kept = this.#items.filter(
      (other) => other.admitted && !other.removed && (other.state === "done" || !FINISHED.has(other.state)),
    );
    if (kept.length >= this.#maxFiles) {
      const limit = this.#maxFiles === 1 ? "one file" : `${this.#maxFiles} files`;
      return { code: "too_many_files", message: `Too many files: this takes at most ${limit}` };
    }
    return null;
  }

  #refuse(item, code, message) {
    this.#show(item, "refused", message);
    this.#emit("s3drop:rejected", { file: item.file, code, message });
  }

  #enqueue(item) {
    item.admitted = true;
    item.run += 1;
    this.#show(item, "queued", "Queued", { quiet: true });
    this.#waiting.push(item);
    this.#pump();
  }

  #pump() {
    while (this.#active < MAX_PARALLEL && this.#waiting.length) {
      const item = this.#waiting.shift();
      if (item.state !== "queued" || item.removed) continue;
      this.#active += 1;
      this.#process(item, item.run).finally(() => {
        this.#active -= 1;
        this.#pump();
      });
    }
  }

  async #process(item, run) {
    const current = () => item.run === run && item.state !== "cancelled";
    try {
      if (!item.verifyOnly) {
        this.#show(item, "queued", "Preparing…", { quiet: true });
        if (item.sent === undefined) item.sent = (await this.#downscaled(item)) || item.file;
        if (!current()) return;
        if (item.sent.size > this.#config.max_bytes) {
          const sent = item.sent === item.file ? "" : " after downscaling";
          const limit = formatSize(this.#config.max_bytes);
          this.#refuse(item, "file_too_large", `Too big: ${formatSize(item.sent.size)}${sent}, the limit is ${limit}`);
          return;
        }
        if (item.sha256 === undefined) item.sha256 = await sha256Hex(item.sent);
        if (!current()) return;
        const signed = await this.#sign(item);
        if (!signed || !current()) return;
        const posted = await this.#post(item, signed);
        if (!current() || !posted) return;
        item.upload = signed;
      }
      await this.#complete(item, run);
    } catch (error) {
      if (error && error.name === "AbortError") return;
      if (current()) this.#fail(item, "client_error", `Something went wrong: ${(error && error.message) || error}`, 0);
    }
  }

  #fail(item, code, message, status) {
    this.#show(item, "failed", message);
    this.#emit("s3drop:failed", { file: item.file, code, message, status });
  }

  /** Whether the settings may shrink this file before it is sent (then its size is judged after). */
  #mayDownscale(item) {
    return Boolean(this.#config && this.#config.client_max_side) && item.type !== "image/gif";
  }

  /** The downscaled copy the server's settings ask for, or null (off, small enough, or the browser
   * cannot); the row says so while it works. */
  async #downscaled(item) {
    const config = this.#config;
    if (!config || !config.client_max_side) return null;
    const copy = await downscale(item.file, item.type, {
      maxSide: config.client_max_side,
      quality: config.client_quality,
      types: describeTypes(config),
    });
    if (copy) {
      item.type = copy.type;
      item.el.dataset.sentBytes = String(copy.size);
      item.parts.size.textContent = `${formatSize(item.file.size)} → ${formatSize(copy.size)}`;
    }
    return copy;
  }

  async #sign(item) {
    item.controller = new AbortController();
    const file = item.sent || item.file;
    const body = { filename: file.name || "image", content_type: item.type, size: file.size };
    if (item.sha256) body.sha256 = item.sha256;
    const result = await this.#api("POST", "uploads", body, item.controller.signal);
    item.controller = null;
    if (item.state === "cancelled") return null;
    if (result.ok && result.data && result.data.upload) return result.data.upload;
    const code = (result.data && result.data.error && result.data.error.code) || `http_${result.status}`;
    if (result.status === 409 && code === "already_uploaded" && result.data.image) {
      this.#duplicate(item, readyImage(result.data.image, this.apiBase));
    } else if (result.status === 0) {
      this.#fail(item, "network_error", userMessage(result), 0);
    } else if (result.status === 401) {
      this.#fail(item, code, "Not signed in: sign in, then retry", 401);
    } else if ([400, 413, 415, 422].includes(result.status)) {
      const message = `Refused: ${userMessage(result)}`;
      this.#show(item, "refused", message);
      this.#emit("s3drop:rejected", { file: item.file, code, message });
    } else {
      this.#fail(item, code, `Could not start the upload: ${userMessage(result)}`, result.status);
    }
    return null;
  }

  /** The server's thumbnail of `image` in the row (for a duplicate, always: it is that image; for
   * an accepted file, when the row shows no preview of its own: one the browser could not decode,
   * such as HEIC, or too large to preview), its placeholder painted while it loads where no
   * preview is shown. */
  #showThumbnail(item, image, { always = false } = {}) {
    const thumb = item.parts.thumb;
    const previewShown = !thumb.hidden;
    if (!image.thumbnail_url || (previewShown && !always)) return;
    if (!previewShown) {
      paintPlaceholder(thumb, image.placeholder);
      if (image.placeholder) thumb.hidden = false;
    }
    thumb.addEventListener("load", () => (thumb.hidden = false), { once: true });
    thumb.src = new URL(image.thumbnail_url, this.apiBase).href;
  }

  /** Signing found the same bytes already in the gallery: nothing is sent; the row shows that
   * image, and the host hears `s3drop:accepted` with `duplicate: true` (its id joins the value, as
   * an upload's would: the image is there either way). */
  #duplicate(item, image) {
    item.image = image;
    item.el.dataset.duplicate = "";
    this.#showThumbnail(item, image, { always: true });
    this.#emit("s3drop:accepted", { file: item.file, image, duplicate: true });
    this.#show(item, "done", "Already in your gallery");
  }

  /** POST the signed form to storage. True on success; otherwise the row says why. */
  #post(item, upload) {
    return new Promise((resolve) => {
      const form = new FormData();
      for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
      const file = item.sent || item.file;
      form.append("file", file, file.name || "image");
      const xhr = new XMLHttpRequest();
      item.xhr = xhr;
      const finish = (ok) => {
        item.xhr = null;
        resolve(ok);
      };
      const unreachable = () => {
        this.#fail(item, "network_error", "Network error: storage could not be reached", 0);
        finish(false);
      };
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && item.state === "uploading") this.#progress(item, event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          this.#progress(item, 1);
          finish(true);
        } else if (xhr.status === 0) {
          unreachable();
        } else {
          this.#storageError(xhr, item);
          finish(false);
        }
      });
      xhr.addEventListener("error", unreachable);
      xhr.addEventListener("timeout", () => {
        this.#fail(item, "timeout", "Network error: storage did not answer in time", 0);
        finish(false);
      });
      xhr.addEventListener("abort", () => {
        if (item.state !== "cancelled") this.#show(item, "cancelled", "Cancelled");
        finish(false);
      });
      // On the local backend the form's URL may be relative to the API's server, not this page.
      xhr.open("POST", new URL(upload.url, this.apiBase).href);
      this.#show(item, "uploading", "Uploading… 0%");
      this.#progress(item, 0);
      xhr.send(form);
    });
  }

  /** S3 (and the local backend) answer refusals in XML: <Error><Code/><Message/></Error>. */
  #storageError(xhr, item) {
    let code = "";
    let message = "";
    try {
      const doc = new DOMParser().parseFromString(xhr.responseText || "", "application/xml");
      code = ((doc.querySelector("Error > Code, Code") || {}).textContent || "").trim();
      message = (doc.querySelector("Error > Message, Message") || {}).textContent || "";
    } catch {
      code = "";
    }
    if (code === "EntityTooLarge") {
      const limit = this.#config ? `, the limit is ${formatSize(this.#config.max_bytes)}` : "";
      this.#refuse(item, "file_too_large", `Too big: storage refused ${formatSize(item.file.size)}${limit}`);
    } else if (code === "EntityTooSmall") {
      // The form is signed for the file's exact size: a smaller body means it changed on disk.
      this.#fail(item, "file_changed", "The file changed while it was uploading; retry", xhr.status);
    } else if (code === "AccessDenied" && /expired/i.test(message)) {
      this.#fail(item, "form_expired", "The upload form expired; retry", xhr.status);
    } else {
      const detail = code ? ` (${code})` : ` (HTTP ${xhr.status})`;
      this.#fail(item, code || `http_${xhr.status}`, `Storage refused the upload${detail}`, xhr.status);
    }
  }

  async #complete(item, run) {
    const upload = item.upload;
    item.verifyOnly = false;
    this.#show(item, "verifying", "Verifying…");
    item.controller = new AbortController();
    const result = await this.#api("POST", `uploads/${encodeURIComponent(upload.id)}/complete`, {}, item.controller.signal);
    item.controller = null;
    const image = result.ok && result.data && result.data.image ? readyImage(result.data.image, this.apiBase) : null;
    if (image) {
      // Stored even if the row was removed meanwhile: the host hears of it either way.
      item.image = image;
      this.#showThumbnail(item, image);
      this.#emit("s3drop:accepted", { file: item.file, image, duplicate: false });
      this.#updateValue();
    }
    if (item.run !== run) return;
    if (image) {
      let message = "Done";
      if (image.width && image.height) message += ` · ${image.width} × ${image.height}`;
      this.#show(item, "done", message);
      return;
    }
    const code = (result.data && result.data.error && result.data.error.code) || `http_${result.status}`;
    if (result.status === 422) {
      const message = `Rejected: ${userMessage(result)}`;
      this.#show(item, "rejected", message);
      this.#emit("s3drop:rejected", { file: item.file, code, message });
      return;
    }
    // Storage holds the file; a later retry only needs to ask again, unless the server lost it.
    item.verifyOnly = result.status !== 404;
    const why = result.status === 401 ? "sign in, then retry" : userMessage(result);
    this.#fail(item, code, `Could not verify the upload: ${why}`, result.status);
  }

  #progress(item, fraction) {
    const percent = Math.max(0, Math.min(100, Math.round(fraction * 100)));
    item.parts.fill.style.width = `${percent}%`;
    item.parts.bar.setAttribute("aria-valuenow", String(percent));
    if (item.state === "uploading") {
      item.parts.message.textContent = `Uploading… ${percent}%`;
      this.#emit("s3drop:progress", { file: item.file, state: item.state, percent, message: item.parts.message.textContent });
    }
  }

  #show(item, state, message, { quiet = false } = {}) {
    const changed = item.state !== state;
    item.state = state;
    const { parts } = item;
    item.el.dataset.state = state;
    item.el.setAttribute("part", `file ${state}`);
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
    // One sentence per outcome; progress ("Uploading… 40%") is on the progress bar, not read out.
    if (!quiet && !busy) this.announce(`${item.file.name}: ${message}`);
    if (changed) {
      const percent = Number(parts.bar.getAttribute("aria-valuenow") || 0);
      this.#emit("s3drop:progress", { file: item.file, state, percent, message });
    }
    this.#updateSummary();
    this.#updateValue();
  }

  #cancel(item) {
    if (!ACTIVE.has(item.state) || item.state === "verifying") return;
    this.#show(item, "cancelled", "Cancelled");
    const waitingAt = this.#waiting.indexOf(item);
    if (waitingAt >= 0) this.#waiting.splice(waitingAt, 1);
    if (item.controller) item.controller.abort();
    if (item.xhr) item.xhr.abort();
    item.parts.retry.focus();
  }

  #retry(item, { focus = true } = {}) {
    if (item.state !== "failed" && item.state !== "cancelled") return;
    item.state = "queued";
    if (!item.verifyOnly) item.upload = null;
    this.#enqueue(item);
    if (focus) item.parts.cancel.focus();
  }

  #remove(item, { focus = true } = {}) {
    if (ACTIVE.has(item.state)) this.#cancel(item);
    item.removed = true;
    const at = this.#items.indexOf(item);
    const next = this.#items[at + 1] || this.#items[at - 1];
    if (at >= 0) this.#items.splice(at, 1);
    item.run += 1;
    item.el.remove();
    if (item.previewUrl) URL.revokeObjectURL(item.previewUrl);
    if (!this.#items.length) this.#ui.queue.hidden = true;
    this.#updateSummary();
    this.#updateValue();
    this.#emit("s3drop:removed", { file: item.file, image: item.image });
    if (!focus) return;
    const target = next && next.el.querySelector(".file-actions button:not([hidden])");
    (target || this.#ui.dropzone).focus();
  }

  #updateSummary() {
    const count = { done: 0, busy: 0, attention: 0 };
    for (const item of this.#items) {
      if (item.state === "done") count.done += 1;
      else if (ACTIVE.has(item.state)) count.busy += 1;
      else if (item.state !== "cancelled") count.attention += 1;
    }
    const parts = [];
    if (count.busy) parts.push(`${count.busy} in progress`);
    if (count.done) parts.push(`${count.done} done`);
    if (count.attention) parts.push(`${count.attention} not uploaded`);
    this.#ui.summary.textContent = parts.join(" · ");
    this.#ui.clearFinished.hidden = !this.#items.some((item) => FINISHED.has(item.state));
    this.#setState("busy", count.busy > 0);
  }

  /** The form value (each accepted id under `name`) and validity: `required` wants one image;
   * a form waits while files are still on their way. */
  #updateValue() {
    const ids = this.value;
    const key = ids.join(",");
    const name = this.name;
    if (name && ids.length) {
      const data = new FormData();
      for (const id of ids) data.append(name, id);
      this.#internals.setFormValue(data);
    } else {
      this.#internals.setFormValue(null);
    }
    const busy = this.#items.some((item) => ACTIVE.has(item.state));
    const anchor = this.#ui.dropzone;
    if (busy) {
      this.#internals.setValidity({ customError: true }, "Wait until the uploads finish", anchor);
    } else if (this.hasAttribute("required") && !ids.length) {
      const message = this.#multiple ? "Add at least one image" : "Add an image";
      this.#internals.setValidity({ valueMissing: true }, message, anchor);
    } else {
      this.#internals.setValidity({});
    }
    if (this.#lastValue !== undefined && this.#lastValue !== key) {
      this.dispatchEvent(new Event("change", { bubbles: true }));
    }
    this.#lastValue = key;
  }

  #lastValue = undefined;

  // --- ways in: picker, keyboard, drag and drop, paste -----------------------------------------

  #bindControls() {
    const ui = this.#ui;
    ui.input.addEventListener("change", () => {
      this.addFiles(ui.input.files);
      ui.input.value = "";
    });
    ui.clearFinished.addEventListener("click", () => {
      for (const item of this.#items.slice()) if (FINISHED.has(item.state)) this.#remove(item, { focus: false });
      ui.dropzone.focus();
    });
    ui.dropzone.addEventListener("click", (event) => {
      if (event.target.closest && event.target.closest("label")) {
        if (this.#disabled) event.preventDefault();
        return; // the label opens the picker itself
      }
      this.#choose();
    });
    // Like a native button: Enter opens the picker on keydown, Space on keyup (browsers only let a
    // page open a file picker from a user gesture, and a Space keydown does not count as one).
    ui.dropzone.addEventListener("keydown", (event) => {
      if (event.target !== ui.dropzone) return;
      if (event.key === "Enter" && !event.repeat) {
        event.preventDefault();
        this.#choose();
      } else if (event.key === " ") {
        event.preventDefault(); // no page scroll
      }
    });
    ui.dropzone.addEventListener("keyup", (event) => {
      if (event.target !== ui.dropzone || event.key !== " ") return;
      event.preventDefault();
      this.#choose();
    });
  }

  #choose() {
    if (!this.#disabled) this.#ui.input.click();
  }

  #handlers = {
    dragenter: (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      this.#dragDepth += 1;
      this.#ui.dropzone.classList.add("is-dragging");
      this.#setState("dragging", true);
    },
    dragover: (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = this.#disabled ? "none" : "copy";
      const path = event.composedPath ? event.composedPath() : [];
      this.#ui.dropzone.classList.toggle("is-over", path.includes(this));
    },
    dragleave: (event) => {
      if (!carriesFiles(event)) return;
      this.#dragDepth = Math.max(0, this.#dragDepth - 1);
      if (!this.#dragDepth) this.#endDrag();
    },
    drop: (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault(); // a file dropped here must not replace the page
      this.#endDrag();
      if (event.dataTransfer.files && event.dataTransfer.files.length) this.addFiles(event.dataTransfer.files);
    },
    paste: (event) => {
      const data = event.clipboardData;
      if (!data || this.#disabled) return;
      let files = Array.from(data.files || []);
      if (!files.length) {
        files = Array.from(data.items || [])
          .filter((entry) => entry.kind === "file")
          .map((entry) => entry.getAsFile())
          .filter(Boolean);
      }
      if (!files.length) return;
      event.preventDefault();
      const described = this.#config ? describeTypes(this.#config) : [];
      this.addFiles(files.map((file) => namePasted(file, described)));
      this.announce(files.length === 1 ? "Pasted 1 file" : `Pasted ${files.length} files`);
    },
  };

  #endDrag() {
    this.#dragDepth = 0;
    this.#ui.dropzone.classList.remove("is-dragging", "is-over");
    this.#setState("dragging", false);
  }

  /** Drops and pastes land on the element, or anywhere in the document with drop-target="document". */
  #listen() {
    const target = this.getAttribute("drop-target") === "document" ? document : this;
    for (const [type, handler] of Object.entries(this.#handlers)) target.addEventListener(type, handler);
    this.#listeningOn = target;
  }

  #unlisten() {
    if (!this.#listeningOn) return;
    for (const [type, handler] of Object.entries(this.#handlers)) this.#listeningOn.removeEventListener(type, handler);
    this.#listeningOn = null;
  }
}

if (!customElements.get("s3drop-uploader")) customElements.define("s3drop-uploader", S3DropUploader);
