/* s3drop's own page: the <s3drop-uploader> element for uploads, plus the gallery of your images,
 * the viewer, delete, and the access-token banner. Plain JavaScript modules, no build step, no
 * inline code (CSP-ready).
 *
 * Every URL comes from where the app is mounted: the API base is the element's (the `api/` folder
 * beside this module's `static/` folder), never an absolute path.
 */
import { fetchJSON, formatSize, paintPlaceholder, userMessage } from "./s3drop-uploader.js";

const PAGE_SIZE = 24;
const TOKEN_KEY = "s3drop.token";

const el = (id) => document.getElementById(id);
const ui = {
  uploader: el("uploader"),
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

// --- small helpers ---------------------------------------------------------------------------

/** One short sentence in the page's live region (a polite log: each is read on its own). */
function announce(text) {
  const line = document.createElement("p");
  line.textContent = text;
  ui.announcer.append(line);
  while (ui.announcer.childElementCount > 5) ui.announcer.firstElementChild.remove();
}

function storedToken() {
  try {
    return window.sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

/** The API's headers for this tab: its access token, once the user gave one. */
function authHeaders() {
  const token = storedToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** A JSON API call relative to the element's API base ({@link fetchJSON}); a 401 asks for a token. */
async function api(method, path, body) {
  const headers = authHeaders();
  const result = await fetchJSON(new URL(path, ui.uploader.apiBase), { method, headers, body });
  if (result.status === 401) needToken(result.challenge, Boolean(headers.Authorization));
  return result;
}

// --- the uploader --------------------------------------------------------------------------

ui.uploader.headers = authHeaders;
ui.uploader.addEventListener("s3drop:ready", () => {
  document.body.dataset.ready = "true";
});
ui.uploader.addEventListener("s3drop:accepted", (event) => addToGallery(event.detail.image));
ui.uploader.addEventListener("s3drop:unauthorized", (event) => {
  needToken(event.detail.challenge, event.detail.sentCredentials);
});
if (ui.uploader.config) document.body.dataset.ready = "true";

// --- access tokens (when the server is configured with bearer tokens) ----------------------

/** A 401 that asks for a bearer token: show the token form (basic auth is the browser's job). */
function needToken(challenge, hadToken) {
  if (!challenge.toLowerCase().startsWith("bearer")) return;
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
  if (!ui.uploader.config) ui.uploader.reload();
  ui.uploader.retryFailed();
  if (!gallery.available) loadGallery();
});

// --- gallery ---------------------------------------------------------------------------------

const gallery = {
  cursor: null,
  ids: new Set(),
  loading: false,
  available: true,
  images: new Map(),
  labels: new Map(), // label -> how many tiles used it
  tileLabels: new Map(), // id -> its tile's unique label
};

async function loadGallery() {
  if (gallery.loading) return;
  gallery.loading = true;
  ui.loadMore.disabled = true;
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (gallery.cursor) query.set("cursor", gallery.cursor);
  const result = await api("GET", `images?${query}`);
  gallery.loading = false;
  ui.loadMore.disabled = false;
  if (!result.ok || !result.data || !Array.isArray(result.data.images)) {
    gallery.available = gallery.ids.size > 0;
    if (result.status === 401) {
      // The sign-in banner says what to do; this is a hint, not an error.
      ui.galleryStatus.textContent = "Sign in to see your images.";
      ui.galleryStatus.dataset.kind = "signin";
    } else {
      const why = result.ok ? "the server sent an unexpected answer" : userMessage(result);
      ui.galleryStatus.textContent = `Could not load your images: ${why}`;
      ui.galleryStatus.dataset.kind = "error";
    }
    ui.galleryStatus.hidden = false;
    return;
  }
  gallery.available = true;
  for (const image of result.data.images) appendTile(image);
  gallery.cursor = result.data.next_cursor || null;
  ui.loadMore.hidden = !gallery.cursor;
  updateGallery();
}

/** A tile for an image uploaded on this visit. It joins the end of the gallery, so no tile moves
 * under the pointer while uploads finish (a reload shows it first, newest first). */
function addToGallery(image) {
  if (gallery.ids.has(image.id)) return;
  ui.gallery.append(buildTile(image));
  updateGallery();
}

function appendTile(image) {
  if (gallery.ids.has(image.id)) return;
  ui.gallery.append(buildTile(image));
}

function uploadedText(image) {
  const when = new Date(image.uploaded_at);
  if (!image.uploaded_at || Number.isNaN(when.getTime())) return "";
  return when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
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

/** An image by its size and upload time (for when the API gives no filename). */
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
  if (typeof image.bytes === "number") facts.push(formatSize(image.bytes));
  if (long && image.uploaded_at) {
    const when = new Date(image.uploaded_at);
    if (!Number.isNaN(when.getTime())) {
      facts.push(`uploaded ${when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })}`);
    }
  }
  return facts.join(" · ");
}

/** The tile's accessible name: its label, told apart from any other tile's with the same label
 * (two "holiday.png", or two images of one size uploaded in the same second) by a number. */
function uniqueLabel(image) {
  const label = imageLabel(image);
  const count = (gallery.labels.get(label) || 0) + 1;
  gallery.labels.set(label, count);
  const unique = count === 1 ? label : `${label} (${count})`;
  gallery.tileLabels.set(image.id, unique);
  return unique;
}

/** How messages name an image: its filename once known, else what its tile is called. */
function nameOf(id) {
  const image = gallery.images.get(id);
  if (!image) return "the image";
  return image.filename || gallery.tileLabels.get(id) || imageLabel(image);
}

/** How wide a tile and the viewer show an image (the CSS of .grid and .viewer, in sizes' terms):
 * the browser picks from the srcset the smallest variant that fills that at its pixel ratio. */
const TILE_SIZES = "(max-width: 560px) 50vw, 240px";

/** The viewer's slot: the dialog's width less its frame, at most 1160 CSS px, and never wider
 * than the image itself (a srcset's width descriptor sets the image's natural size to the slot's:
 * a wider slot would show a small image enlarged). */
function viewerSizes(image) {
  const cap = Math.min(image.width || 1160, 1160);
  return `(max-width: ${cap + 72}px) calc(100vw - 72px), ${cap}px`;
}

/** Give ``img`` the image's variants: a <picture> around it with one <source> per type (AVIF,
 * then WebP), so the browser fetches the size its slot needs, not the original. ``fallback`` is
 * the <img>'s own URL (and srcset) for a browser that shows none of the types. */
function showResponsive(img, image, sizes, fallback) {
  let picture = img.parentElement;
  if (!(picture instanceof HTMLPictureElement)) {
    picture = document.createElement("picture");
    img.replaceWith(picture);
    picture.append(img);
  }
  for (const old of picture.querySelectorAll("source")) old.remove();
  for (const source of image.sources || []) {
    const element = document.createElement("source");
    element.type = source.type;
    element.sizes = sizes;
    element.srcset = source.srcset;
    picture.insertBefore(element, img);
  }
  img.sizes = sizes;
  img.srcset = fallback.srcset || "";
  img.src = fallback.src;
}

function buildTile(image) {
  gallery.ids.add(image.id);
  gallery.images.set(image.id, image);
  const tile = ui.tileTemplate.content.firstElementChild.cloneNode(true);
  const label = uniqueLabel(image);
  tile.dataset.id = image.id;
  const img = tile.querySelector(".tile-img");
  paintPlaceholder(img, image.placeholder); // the colour now, the ThumbHash in a moment
  img.alt = label;
  img.loading = "lazy";
  img.decoding = "async";
  // The variants when there are some (never the original in a tile), else the thumbnail.
  showResponsive(img, image, TILE_SIZES, { src: image.thumbnail_url || image.url });
  if (image.width && image.height) {
    img.width = image.width;
    img.height = image.height;
  }
  // Captioned with the original filename when the API gives it, else with the upload time.
  tile.querySelector(".tile-name").textContent = image.filename || tileDate(image) || label;
  tile.querySelector(".tile-name").title = image.filename ? `${label}, ${imageDescription(image)}` : label;
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
 * not carry it: GET {api}/images/{id}), unless it is known already. */
async function openViewer(id, opener) {
  const image = gallery.images.get(id);
  if (!image) return;
  viewing = id;
  returnFocus = opener;
  ui.viewerImg.removeAttribute("src"); // not the last image while this one loads
  if (image.width && image.height) {
    ui.viewerImg.style.setProperty("--image-width", `${image.width}px`);
    ui.viewerImg.style.setProperty("--image-ratio", String(image.width / image.height));
  }
  paintPlaceholder(ui.viewerImg, image.placeholder);
  showResponsive(ui.viewerImg, image, viewerSizes(image), { src: image.url, srcset: image.srcset });
  if (image.width && image.height) {
    ui.viewerImg.width = image.width;
    ui.viewerImg.height = image.height;
  }
  describeInViewer(image);
  ui.viewer.showModal();
  ui.viewerClose.focus();
  if (image.filename) return;
  const result = await api("GET", `images/${encodeURIComponent(id)}`);
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
// A dialog's close event comes a task after close(): one opened again before it ran (a second
// image opened, or a second delete asked, at once on a busy page) is not closed; its state stays.
ui.viewer.addEventListener("close", () => {
  if (ui.viewer.open) return;
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
  ui.confirmText.textContent = `“${nameOf(id)}” and its thumbnail will be removed from storage. This cannot be undone.`;
  ui.confirmError.hidden = true;
  ui.confirmDelete.disabled = false;
  ui.confirm.showModal();
  ui.confirmCancel.focus();
}

ui.confirm.addEventListener("close", () => {
  if (ui.confirm.open) return; // opened again for another image meanwhile (see the viewer's)
  deleting = null;
  if (confirmReturnFocus && confirmReturnFocus.isConnected) confirmReturnFocus.focus();
});

ui.confirmDelete.addEventListener("click", async () => {
  const id = deleting;
  if (!id) return;
  const name = nameOf(id);
  ui.confirmDelete.disabled = true;
  ui.confirmError.hidden = true;
  const result = await api("DELETE", `images/${encodeURIComponent(id)}`);
  // While storage answered, the dialog may have been dismissed, or opened for another image:
  // the answer then closes nothing and writes in no one else's dialog.
  const asking = deleting === id && ui.confirm.open;
  if (asking) ui.confirmDelete.disabled = false;
  if (!result.ok && result.status !== 404) {
    const why = `Could not delete: ${userMessage(result)}`;
    if (!asking) {
      announce(`${name}: ${why}`);
      return;
    }
    ui.confirmError.textContent = why;
    ui.confirmError.hidden = false;
    return;
  }
  const tile = tileOf(id);
  const focused = Boolean(tile && tile.contains(document.activeElement)) || viewing === id;
  const next = removeTile(id);
  if (asking) {
    confirmReturnFocus = null;
    ui.confirm.close();
  }
  if (viewing === id) {
    returnFocus = null;
    ui.viewer.close();
  }
  announce(`Deleted ${name}`);
  if (!asking && !focused) return; // the person has gone on elsewhere: focus stays there
  // Focus moves to the tile that took its place (or the one before it); with none left, to the
  // gallery's heading. Each shows its ring.
  if (next) next.querySelector(".tile-open").focus({ focusVisible: true });
  else el("gallery-title").focus();
});

function tileOf(id) {
  return ui.gallery.querySelector(`.tile[data-id="${CSS.escape(id)}"]`);
}

/** Remove an image's tile; returns the tile now nearest to where it was, if any. */
function removeTile(id) {
  const tile = tileOf(id);
  const next = tile ? tile.nextElementSibling || tile.previousElementSibling : null;
  if (tile) tile.remove();
  gallery.ids.delete(id);
  gallery.images.delete(id);
  gallery.tileLabels.delete(id);
  updateGallery();
  return next;
}

loadGallery();
