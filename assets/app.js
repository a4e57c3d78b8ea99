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
