/* Theme board: play just the span of audio a quote comes from; print the board. */
(function () {
  "use strict";
  var audio = document.getElementById("board-audio");
  var playing = null;
  var stopAt = null;
  function reset() {
    if (playing) { playing.setAttribute("aria-pressed", "false"); playing.classList.remove("is-playing"); }
    playing = null;
    stopAt = null;
  }
  if (audio) {
    audio.addEventListener("timeupdate", function () {
      if (stopAt !== null && audio.currentTime >= stopAt) { audio.pause(); reset(); }
    });
    audio.addEventListener("ended", reset);
  }
  document.querySelectorAll(".play-span").forEach(function (button) {
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", function () {
      if (playing === button) { audio.pause(); reset(); return; }
      audio.pause();
      reset();
      var start = parseFloat(button.getAttribute("data-start"));
      stopAt = parseFloat(button.getAttribute("data-end"));
      playing = button;
      button.setAttribute("aria-pressed", "true");
      button.classList.add("is-playing");
      var src = button.getAttribute("data-src");
      var go = function () {
        audio.currentTime = start;
        audio.play().catch(function () { reset(); });
      };
      if (audio.getAttribute("src") !== src) {
        audio.setAttribute("src", src);
        audio.addEventListener("loadedmetadata", go, { once: true });
        audio.load();
      } else {
        go();
      }
    });
  });
  var print = document.getElementById("print-board");
  if (print) { print.addEventListener("click", function () { window.print(); }); }
}());
