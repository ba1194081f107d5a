/* Live progress of a story's transcription, without reloading the page. */
(function () {
  "use strict";
  var box = document.getElementById("story-status");
  if (!box) { return; }
  var state = box.getAttribute("data-status");
  if (state !== "queued" && state !== "transcribing") { return; }
  var url = box.getAttribute("data-status-url");
  var bar = document.getElementById("transcribe-bar");
  var label = document.getElementById("status-label");
  var text = document.getElementById("status-text");

  function minutes(seconds) {
    if (seconds === null || seconds === undefined) { return ""; }
    if (seconds < 60) { return "less than a minute left"; }
    return "about " + Math.round(seconds / 60) + " min left";
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        var pct = Math.round(s.progress);
        if (pct > bar.value) { bar.value = pct; }
        bar.textContent = pct + "%";
        if (s.status === "queued") {
          label.textContent = "Waiting for a worker…";
          text.textContent = s.attempts > 0 ? "Trying again (attempt " + (s.attempts + 1) + ")." : "";
        } else if (s.status === "transcribing") {
          label.textContent = "Transcribing… " + pct + "%";
          text.textContent = pct + "% of the recording done" + (s.seconds_left !== null ? ", " + minutes(s.seconds_left) : "") + ".";
        }
        if (s.status === "transcribed" || s.status === "reviewed" || s.status === "failed") {
          bar.value = s.status === "failed" ? bar.value : 100;
          text.textContent = s.status === "failed" ? (s.error || "Transcription failed.") : "Done. Opening the transcript…";
          setTimeout(function () { window.location.reload(); }, 600);
          return;
        }
        setTimeout(poll, 1500);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
