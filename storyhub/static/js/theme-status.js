/* Live progress of a theme run; opens the themes when it is done. */
(function () {
  "use strict";
  var box = document.getElementById("run-status");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var bar = document.getElementById("run-bar");
  var label = document.getElementById("run-label");
  var text = document.getElementById("run-text");
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        var pct = Math.round(s.progress);
        if (pct > bar.value) { bar.value = pct; }
        bar.textContent = pct + "%";
        if (s.status === "running") {
          label.textContent = "Finding themes… " + pct + "%";
          text.textContent = s.seconds_left !== null ? "About " + Math.max(1, Math.round(s.seconds_left)) + " s left." : "";
        }
        if (s.status === "done") {
          bar.value = 100;
          text.textContent = "Done. Opening the themes…";
          window.location.assign(s.url);
          return;
        }
        if (s.status === "failed") {
          text.textContent = s.error || "Finding themes failed.";
          return;
        }
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 4000); });
  }
  poll();
}());
