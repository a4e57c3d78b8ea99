// Pressluft dashboard glue.
// 1. Sends the session's CSRF token with every htmx request.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRF-Token"] = meta.content; }
});
// 2. Forms with data-confirm ask first.
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) { event.preventDefault(); }
});
// 3. Live job output keeps scrolled to the bottom while the reader is at the bottom.
document.addEventListener("htmx:sseBeforeMessage", function (event) {
  var out = document.getElementById("job-output");
  if (out) { out.dataset.stick = (out.scrollTop + out.clientHeight >= out.scrollHeight - 8) ? "1" : ""; }
});
document.addEventListener("htmx:sseMessage", function () {
  var out = document.getElementById("job-output");
  if (out && out.dataset.stick) { out.scrollTop = out.scrollHeight; }
});
// 4. A slug field follows its name field (data-slug-source="<slug input id>") until the slug
//    is edited by hand.
function pressluftSlug(s) {
  return s.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
    .replace(/[^a-z0-9]+/g, "-").replace(/^-+/, "").slice(0, 40).replace(/-+$/, "");
}
document.addEventListener("input", function (event) {
  var t = event.target;
  if (!t.getAttribute) { return; }
  var slugId = t.getAttribute("data-slug-source");
  if (slugId) {
    var slug = document.getElementById(slugId);
    if (slug && !slug.dataset.edited) { slug.value = pressluftSlug(t.value); }
  } else if (t.id && document.querySelector('[data-slug-source="' + t.id + '"]')) {
    t.dataset.edited = t.value ? "1" : "";
  }
});
// 5. A button with data-copy="<element id>" copies that element's value (or text).
document.addEventListener("click", function (event) {
  var t = event.target;
  var id = t.getAttribute && t.getAttribute("data-copy");
  if (!id) { return; }
  var el = document.getElementById(id);
  if (el && navigator.clipboard) { navigator.clipboard.writeText(el.value || el.textContent); }
});
