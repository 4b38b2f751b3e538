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
// Polls ask with the ETag of what they last showed; a 304 means nothing changed, and the
// htmx config (page head) then swaps nothing, so the page is not re-rendered.
var stevedoreEtags = {};
document.addEventListener("htmx:configRequest", function (e) {
  if (e.detail.verb !== "get") { return; }
  var tag = stevedoreEtags[e.detail.path];
  if (tag) { e.detail.headers["If-None-Match"] = tag; }
});
document.addEventListener("htmx:afterRequest", function (e) {
  var xhr = e.detail.xhr, config = e.detail.requestConfig;
  if (!xhr || !config || xhr.status !== 200) { return; }
  var tag = xhr.getResponseHeader("ETag");
  if (tag) { stevedoreEtags[config.path] = tag; }
});
// The editor points at the line an error names: select it and bring it into view.
document.addEventListener("DOMContentLoaded", function () {
  var area = document.querySelector("textarea[data-error-line]");
  if (!area) { return; }
  var line = parseInt(area.getAttribute("data-error-line"), 10), lines = area.value.split("\n");
  var start = 0;
  for (var i = 0; i < line - 1 && i < lines.length; i++) { start += lines[i].length + 1; }
  area.focus();
  area.setSelectionRange(start, start + (lines[line - 1] || "").length);
  var height = area.scrollHeight / Math.max(lines.length, 1);
  area.scrollTop = Math.max(0, (line - 3) * height);
});
