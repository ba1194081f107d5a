/* Staff library reader: press a time or a word to play from it; the playing word is marked. */
(function () {
  "use strict";
  var player = document.getElementById("library-player");
  var transcript = document.getElementById("transcript");
  var words = transcript ? Array.prototype.slice.call(transcript.querySelectorAll(".word")) : [];
  var starts = words.map(function (w) { return parseFloat(w.dataset.start); });
  var current = null;

  function playFrom(seconds) {
    if (!player) { return; }
    player.currentTime = seconds;
    var playing = player.play();
    if (playing && playing.catch) { playing.catch(function () {}); }
  }

  // The last word that starts at or before `t` (binary search: transcripts are long).
  function wordAt(t) {
    var lo = 0, hi = starts.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (starts[mid] <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found >= 0 && t <= parseFloat(words[found].dataset.end) + 0.5 ? words[found] : null;
  }

  function mark() {
    var word = wordAt(player.currentTime);
    if (word === current) { return; }
    if (current) { current.classList.remove("current"); current.removeAttribute("aria-current"); }
    current = word;
    if (word) {
      word.classList.add("current");
      word.setAttribute("aria-current", "true");
      var box = word.getBoundingClientRect();
      if (box.top < 80 || box.bottom > window.innerHeight - 20) {
        word.scrollIntoView({block: "center", behavior: "smooth"});
      }
    }
  }

  document.addEventListener("click", function (e) {
    var seek = e.target.closest(".seek");
    if (seek) { playFrom(parseFloat(seek.dataset.start)); return; }
    var word = player && e.target.closest(".word");
    if (word) { playFrom(parseFloat(word.dataset.start)); }
  });

  if (player) {
    player.addEventListener("timeupdate", mark);
    player.addEventListener("seeked", mark);
    var hash = /^#t=([\d.]+)$/.exec(window.location.hash);
    if (hash) {
      player.addEventListener("loadedmetadata", function () {
        player.currentTime = parseFloat(hash[1]);
        mark();
      }, {once: true});
    }
  }
}());
