/* The uploader element on a Django page: Django's CSRF token on every API call it makes.
 *
 * Loaded by the widget's media (`<script type="module">`), next to the element's own module. Each
 * `<s3drop-uploader data-csrf-header=...>` sends that header (X-CSRFToken by default) with the
 * token from the csrftoken cookie (its name from `data-csrf-cookie`) or, when the cookie is
 * HttpOnly, from the form's own {% csrf_token %} input: what Django's CSRF docs ask of AJAX.
 */
import "./s3drop-uploader.js";

function cookie(name) {
  for (const part of document.cookie ? document.cookie.split(";") : []) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

function token(uploader) {
  const fromCookie = cookie(uploader.dataset.csrfCookie || "csrftoken");
  if (fromCookie) return fromCookie;
  const input = (uploader.form || document).querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

function attach(uploader) {
  const header = uploader.dataset.csrfHeader || "X-CSRFToken";
  uploader.headers = () => ({ [header]: token(uploader) });
}

const SELECTOR = "s3drop-uploader[data-csrf-header]";
for (const uploader of document.querySelectorAll(SELECTOR)) attach(uploader);
// Uploaders added later (a formset's "add another") get the token too.
new MutationObserver((changes) => {
  for (const change of changes) {
    for (const node of change.addedNodes) {
      if (!(node instanceof Element)) continue;
      if (node.matches(SELECTOR)) attach(node);
      for (const inner of node.querySelectorAll(SELECTOR)) attach(inner);
    }
  }
}).observe(document.documentElement, { childList: true, subtree: true });
