/* Transcript editor: click a word to play from it (and, for those who may correct it, type
   what was said in its place, Enter to save), follow the playing word, edit passages, and
   check the words the computer was unsure of (play each, "It's right" or correct it). */
(function () {
  "use strict";
  var player = document.getElementById("player");
  var container = document.getElementById("transcript");
  if (!player || !container) { return; }
  var statusEl = document.getElementById("editor-status");
  var toggle = document.getElementById("play-pause");
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var editUrl = container.getAttribute("data-edit-url");
  var wordUrl = container.getAttribute("data-word-url"); // set only for those who may correct
  var words = [], starts = [], current = null;
  var stopAt = null; // the end of a stretch played from the list of unsure words

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
    if (stopAt !== null && player.currentTime >= stopAt) { player.pause(); }
    if (!player.paused) { requestAnimationFrame(frame); }
  }

  container.addEventListener("click", function (e) {
    var word = e.target.closest(".word");
    if (word && !word.closest(".editing")) { stopAt = null; seek(word); correctInPlace(word); }
    var edit = e.target.closest(".edit-segment");
    if (edit) { startEdit(edit.closest(".segment")); }
  });
  container.addEventListener("keydown", function (e) {
    var word = e.target.closest(".word");
    if (!word) { return; }
    // Enter: play from the word and correct it; Space: play from it only.
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      stopAt = null;
      seek(word);
      if (e.key === "Enter") { correctInPlace(word); }
    }
  });
  player.addEventListener("play", function () { toggle.textContent = "Pause"; requestAnimationFrame(frame); });
  player.addEventListener("pause", function () { toggle.textContent = "Play"; stopAt = null; });
  player.addEventListener("seeked", highlight);
  player.addEventListener("timeupdate", highlight);
  toggle.addEventListener("click", function () {
    if (player.paused) { player.play(); } else { player.pause(); }
  });

  function renderWords(target, list) {
    target.textContent = "";
    list.forEach(function (w) {
      var span = document.createElement("span");
      span.className = "word" + (w.unsure ? " low" : "") + (w.edited ? " edited" : "") +
        (w.redacted ? " redacted" : "");
      span.tabIndex = 0;
      span.setAttribute("role", "button");
      span.setAttribute("data-start", w.start);
      span.setAttribute("data-end", w.end);
      if (w.id !== null && w.id !== undefined) { span.setAttribute("data-word-id", w.id); }
      if (w.label) { span.setAttribute("data-label", w.label); }
      span.title = w.label ? "Redacted: others read " + w.label + " and hear silence" :
        w.redacted ? "Redacted" : Math.round(w.probability * 100) + "% sure";
      span.textContent = w.text;
      target.appendChild(span);
      target.appendChild(document.createTextNode(" "));
    });
    index();
  }

  // --- One word, corrected where it stands ------------------------------------------------
  // The word's place and time are kept: the server puts the new text in the old word's time.
  function timeOf(seconds) {
    var s = Math.floor(seconds % 60);
    return Math.floor(seconds / 60) + ":" + (s < 10 ? "0" : "") + s;
  }

  function correctInPlace(span) {
    if (!wordUrl || span.classList.contains("redacted") || !span.hasAttribute("data-word-id") ||
        span.hidden) { return; }
    var segment = span.closest(".segment");
    var textEl = span.parentNode;
    var said = span.textContent;
    var input = document.createElement("input");
    input.type = "text";
    input.className = "word-input";
    input.value = said;
    input.size = Math.max(4, said.length + 2);
    input.setAttribute("autocomplete", "off");
    input.setAttribute("autocapitalize", "off");
    input.setAttribute("spellcheck", "false");
    input.setAttribute("aria-label", "Correct “" + said + "” at " +
      timeOf(parseFloat(span.getAttribute("data-start"))) +
      ": type what was said, then Enter. Escape leaves it as it was.");
    span.hidden = true;
    textEl.insertBefore(input, span.nextSibling);
    input.focus();
    input.select();
    var saving = false;

    function close(focusWord) {
      input.remove();
      span.hidden = false;
      if (focusWord) { span.focus(); }
    }
    function save() {
      var text = input.value.trim().replace(/\s+/g, " ");
      if (text === said) { close(true); return; }
      saving = true;
      input.disabled = true;
      var at = Array.prototype.indexOf.call(textEl.querySelectorAll(".word"), span);
      post(wordUrl.replace(/\/0$/, "/" + span.getAttribute("data-word-id")), { text: text })
        .then(function (res) {
          saving = false;
          input.disabled = false;
          if (!res.ok) {
            statusEl.textContent = res.body.error || "That correction was not saved. Try again.";
            input.focus();
            return;
          }
          input.remove();
          renderWords(textEl, res.body.words);
          statusEl.textContent = (text ? "Corrected “" + said + "” to “" + text + "”."
            : "“" + said + "” taken out.") + " The words around it kept their timing.";
          checked(segment.getAttribute("data-id"), res.body.words);
          reviewState(res.body.reviewed);
          var now = textEl.querySelectorAll(".word");
          if (now.length) { now[Math.min(at, now.length - 1)].focus(); }
        }).catch(function () {
          saving = false;
          input.disabled = false;
          statusEl.textContent = "The connection was lost; the correction was not saved. Try again.";
          input.focus();
        });
    }
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); if (!saving) { save(); } }
      else if (e.key === "Escape") { e.preventDefault(); close(true); }
    });
    input.addEventListener("click", function (e) { e.stopPropagation(); });
    // Left alone unchanged, it goes back to the word; typed in, it waits for Enter or Escape.
    input.addEventListener("blur", function () {
      if (!saving && input.value.trim() === said && input.isConnected) { close(false); }
    });
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
        checked(segment.getAttribute("data-id"), res.body.words);
        reviewState(res.body.reviewed);
      }).catch(function () {
        statusEl.textContent = "The connection was lost; the change was not saved. Try again.";
        save.disabled = false;
      });
    });
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, body: data }; },
        function () { return { ok: false, body: {} }; });
    });
  }

  // --- Unsure words ----------------------------------------------------------------------
  var check = document.getElementById("unsure");
  var checkStatus = document.getElementById("unsure-status");
  var reviewForm = document.querySelector(".review-form");
  var LEAD = 1.0; // seconds played either side of an unsure word, to hear it in its sentence

  function items() { return check ? Array.prototype.slice.call(check.querySelectorAll(".unsure-item")) : []; }
  function say(text) { if (checkStatus) { checkStatus.textContent = text; } }
  function plural(n) { return n + " unsure word" + (n === 1 ? "" : "s"); }

  // The review button says how many words are left unchecked, from the list on the page.
  function setLeft() {
    var left = items().length;
    check.querySelector(".unsure-count").textContent = left;
    check.querySelector(".unsure-done").hidden = left > 0;
    if (!reviewForm) { return; }
    reviewForm.querySelector('input[name="leave_unsure"]').value = left;
    var button = reviewForm.querySelector(".review-button");
    button.textContent = left ? "Mark reviewed anyway, leaving " + plural(left) + " unchecked"
      : "Mark as reviewed";
    button.classList.toggle("button-secondary", left > 0);
  }

  // Take a dealt-with word off the list and, if the person was in it, move on to the next one.
  function done(item, message, hadFocus) {
    var all = items(), at = all.indexOf(item);
    var next = all[at + 1] || all[at - 1];
    item.remove();
    setLeft();
    var left = items().length;
    say(message + " " + (left ? plural(left) + " left to check."
      : "All checked: you can mark the transcript reviewed."));
    if (!hadFocus) { return; }
    if (next) { next.querySelector(".play-unsure").focus(); }
    else if (reviewForm) { reviewForm.querySelector(".review-button").focus(); }
    else { document.getElementById("unsure-heading").focus(); }
  }

  // A change since review asks for another: say so where the page said it was reviewed.
  function reviewState(reviewed) {
    var note = document.querySelector(".reviewed-note");
    if (note && reviewed === false) {
      note.textContent = "Changed since it was reviewed. Reload the page to mark it reviewed again.";
    }
  }

  // After a passage changed: words no longer unsure in it leave the list.
  function checked(segmentId, list) {
    if (!check) { return; }
    var still = {};
    list.forEach(function (w) { if (w.unsure) { still[w.id] = true; } });
    items().forEach(function (item) {
      if (item.getAttribute("data-segment-id") === String(segmentId) &&
          !still[item.getAttribute("data-word-id")]) { item.remove(); }
    });
    setLeft();
  }

  function openCorrect(item, open) {
    var form = item.querySelector(".correct-form");
    var toggleButton = item.querySelector(".correct-unsure");
    form.hidden = !open;
    toggleButton.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      var input = form.querySelector("input[name=text]");
      input.focus();
      input.select();
    } else {
      toggleButton.focus();
    }
  }

  function confirmWord(item, form) {
    var button = form.querySelector("button");
    var id = item.getAttribute("data-word-id");
    var hadFocus = item.contains(document.activeElement); // disabling the button blurs it
    button.disabled = true;
    post(form.action, { words: [parseInt(id, 10)] }).then(function (res) {
      if (!res.ok) {
        say(res.body.error || "That was not saved. Try again.");
        button.disabled = false;
        if (hadFocus) { button.focus(); }
        return;
      }
      var span = container.querySelector('.word[data-word-id="' + id + '"]');
      if (span) { span.classList.remove("low"); }
      done(item, "“" + item.getAttribute("data-text") + "” marked as heard right.", hadFocus);
    }).catch(function () {
      say("The connection was lost; nothing was saved. Try again.");
      button.disabled = false;
    });
  }

  function correctWord(item, form) {
    var input = form.querySelector("input[name=text]");
    var save = form.querySelector('button[type="submit"]');
    var hadFocus = item.contains(document.activeElement);
    save.disabled = true;
    post(form.action, { text: input.value }).then(function (res) {
      save.disabled = false;
      if (!res.ok) {
        say(res.body.error || "That correction was not saved. Try again.");
        if (hadFocus) { input.focus(); }
        return;
      }
      var segment = container.querySelector('.segment[data-id="' + res.body.id + '"]');
      if (segment) { renderWords(segment.querySelector(".segment-text"), res.body.words); }
      var said = input.value.trim();
      done(item, said ? "Corrected to “" + said + "”." : "Word taken out.", hadFocus);
      checked(res.body.id, res.body.words);
      reviewState(res.body.reviewed);
    }).catch(function () {
      save.disabled = false;
      say("The connection was lost; the correction was not saved. Try again.");
    });
  }

  if (check) {
    // Without this script every form still works, by posting the page.
    items().forEach(function (item) {
      item.querySelector(".play-unsure").hidden = false;
      item.querySelector(".correct-unsure").hidden = false;
      item.querySelector(".cancel-correct").hidden = false;
      item.querySelector(".correct-form").hidden = true;
    });
    check.addEventListener("click", function (e) {
      var item = e.target.closest(".unsure-item");
      if (!item) { return; }
      if (e.target.closest(".play-unsure")) {
        var start = parseFloat(item.getAttribute("data-start"));
        stopAt = parseFloat(item.getAttribute("data-end")) + LEAD;
        player.currentTime = Math.max(0, start - LEAD);
        var playing = player.play();
        if (playing && playing.catch) { playing.catch(function () {}); }
      } else if (e.target.closest(".correct-unsure")) {
        openCorrect(item, item.querySelector(".correct-form").hidden);
      } else if (e.target.closest(".cancel-correct")) {
        openCorrect(item, false);
      }
    });
    check.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && e.target.closest(".correct-form")) {
        e.preventDefault();
        openCorrect(e.target.closest(".unsure-item"), false);
      }
    });
    check.addEventListener("submit", function (e) {
      var item = e.target.closest(".unsure-item");
      if (!item) { return; }
      e.preventDefault();
      if (e.target.classList.contains("confirm-unsure")) { confirmWord(item, e.target); }
      else { correctWord(item, e.target); }
    });
  }

  // A link to a part of the page (#redaction after redacting) lands below the sticky player.
  var bar = player.closest(".editor-player");
  function clearOfPlayer() {
    if (bar) { document.documentElement.style.scrollPaddingTop = (bar.offsetHeight + 8) + "px"; }
  }
  clearOfPlayer();
  window.addEventListener("resize", clearOfPlayer);
  var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
  if (target) { target.scrollIntoView(); }

  index();
})();
