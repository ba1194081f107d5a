/* Transcript editor: click a word to play from it, follow the playing word, edit passages. */
(function () {
  "use strict";
  var player = document.getElementById("player");
  var container = document.getElementById("transcript");
  if (!player || !container) { return; }
  var statusEl = document.getElementById("editor-status");
  var toggle = document.getElementById("play-pause");
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var editUrl = container.getAttribute("data-edit-url");
  var words = [], starts = [], current = null;

  function index() {
    words = Array.prototype.slice.call(container.querySelectorAll(".word"));
    starts = words.map(function (w) { return parseFloat(w.getAttribute("data-start")); });
  }
  function find(t) {
    var lo = 0, hi = starts.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (starts[mid] <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }
  function highlight() {
    var i = find(player.currentTime + 0.01);
    var next = i >= 0 ? words[i] : null;
    if (next && parseFloat(next.getAttribute("data-end")) + 0.6 < player.currentTime) { next = null; }
    if (next === current) { return; }
    if (current) { current.classList.remove("current"); current.removeAttribute("aria-current"); }
    current = next;
    if (current) { current.classList.add("current"); current.setAttribute("aria-current", "true"); }
  }
  function seek(word) {
    player.currentTime = parseFloat(word.getAttribute("data-start"));
    var playing = player.play();
    if (playing && playing.catch) { playing.catch(function () {}); }
    highlight();
  }
  function frame() {
    highlight();
    if (!player.paused) { requestAnimationFrame(frame); }
  }

  container.addEventListener("click", function (e) {
    var word = e.target.closest(".word");
    if (word && !word.closest(".editing")) { seek(word); }
    var edit = e.target.closest(".edit-segment");
    if (edit) { startEdit(edit.closest(".segment")); }
  });
  container.addEventListener("keydown", function (e) {
    var word = e.target.closest(".word");
    if (word && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); seek(word); }
  });
  player.addEventListener("play", function () { toggle.textContent = "Pause"; requestAnimationFrame(frame); });
  player.addEventListener("pause", function () { toggle.textContent = "Play"; });
  player.addEventListener("seeked", highlight);
  player.addEventListener("timeupdate", highlight);
  toggle.addEventListener("click", function () {
    if (player.paused) { player.play(); } else { player.pause(); }
  });

  function renderWords(target, list) {
    target.textContent = "";
    list.forEach(function (w) {
      var span = document.createElement("span");
      span.className = "word" + (w.probability < 0.5 ? " low" : "") + (w.edited ? " edited" : "");
      span.tabIndex = 0;
      span.setAttribute("role", "button");
      span.setAttribute("data-start", w.start);
      span.setAttribute("data-end", w.end);
      span.textContent = w.text;
      target.appendChild(span);
      target.appendChild(document.createTextNode(" "));
    });
    index();
  }

  function startEdit(segment) {
    if (segment.classList.contains("editing")) { return; }
    var textEl = segment.querySelector(".segment-text");
    var original = Array.prototype.map.call(textEl.querySelectorAll(".word"),
      function (w) { return w.textContent; }).join(" ") || textEl.textContent.trim();
    segment.classList.add("editing");
    var box = document.createElement("div");
    box.className = "segment-edit";
    var label = document.createElement("label");
    label.textContent = "Correct this passage";
    var area = document.createElement("textarea");
    area.value = original;
    area.id = "edit-" + segment.getAttribute("data-id");
    label.setAttribute("for", area.id);
    var save = document.createElement("button");
    save.type = "button"; save.className = "button"; save.textContent = "Save passage";
    var cancel = document.createElement("button");
    cancel.type = "button"; cancel.className = "button button-secondary"; cancel.textContent = "Cancel";
    var row = document.createElement("div");
    row.className = "button-row";
    row.appendChild(save); row.appendChild(cancel);
    box.appendChild(label); box.appendChild(area); box.appendChild(row);
    textEl.hidden = true;
    segment.appendChild(box);
    area.focus();

    function close() {
      box.remove();
      textEl.hidden = false;
      segment.classList.remove("editing");
    }
    cancel.addEventListener("click", close);
    save.addEventListener("click", function () {
      save.disabled = true;
      var url = editUrl.replace(/\/0$/, "/" + segment.getAttribute("data-id"));
      fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ text: area.value })
      }).then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; });
      }).then(function (res) {
        if (!res.ok) {
          statusEl.textContent = res.body.error || "That change was not saved. Try again.";
          save.disabled = false;
          return;
        }
        renderWords(textEl, res.body.words);
        close();
        statusEl.textContent = "Passage saved. Unchanged words kept their timing.";
      }).catch(function () {
        statusEl.textContent = "The connection was lost; the change was not saved. Try again.";
        save.disabled = false;
      });
    });
  }

  index();
})();
