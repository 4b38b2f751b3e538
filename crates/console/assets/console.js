// Stevedore console: the little htmx leaves to us.
// Keep a followed log pane pinned to its newest line unless the reader scrolled up.
document.addEventListener("htmx:beforeSwap", function (e) {
  var pane = document.getElementById("log-lines");
  if (pane && e.detail.target && e.detail.target.contains(pane)) {
    window.__stevedorePinned = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 8;
  }
});
document.addEventListener("htmx:afterSettle", function () {
  var pane = document.getElementById("log-lines");
  if (pane && window.__stevedorePinned !== false) { pane.scrollTop = pane.scrollHeight; }
});
// A poll that fails (server gone, session over) says so instead of showing stale data silently.
document.addEventListener("htmx:responseError", function (e) {
  var note = document.getElementById("live-note");
  if (note) { note.textContent = "Live updates failed (HTTP " + e.detail.xhr.status + "); reload the page."; }
});
