// A notice a form's redirect carries in the address (?notice=, ?added=, ?saved=, ?done=,
// ?applied=, ?placed=, ?created=) is shown once: the address loses it at once, so a reload
// (or a bookmark) does not show "Auto-recharge settings saved." again.
(function () {
  var keys = ["notice", "added", "saved", "done", "applied", "placed", "created"];
  var url = new URL(window.location.href);
  var changed = false;
  keys.forEach(function (k) {
    if (url.searchParams.has(k)) { url.searchParams.delete(k); changed = true; }
  });
  if (changed) {
    var query = url.searchParams.toString();
    window.history.replaceState(window.history.state, "",
                                url.pathname + (query ? "?" + query : "") + url.hash);
  }
})();
