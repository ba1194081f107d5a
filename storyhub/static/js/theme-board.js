/* Theme board: play a quote's clip (the server sends only that stretch); print the board. */
(function () {
  "use strict";
  var audio = document.getElementById("board-audio");
  var playing = null;
  function reset() {
    if (playing) { playing.setAttribute("aria-pressed", "false"); playing.classList.remove("is-playing"); }
    playing = null;
  }
  if (audio) {
    audio.addEventListener("ended", reset);
    audio.addEventListener("error", reset);
  }
  document.querySelectorAll(".play-span").forEach(function (button) {
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", function () {
      if (playing === button) { audio.pause(); reset(); return; }
      audio.pause();
      reset();
      playing = button;
      button.setAttribute("aria-pressed", "true");
      button.classList.add("is-playing");
      var src = button.getAttribute("data-src");
      if (audio.getAttribute("src") !== src) {
        audio.setAttribute("src", src);
      }
      audio.currentTime = 0;
      audio.play().catch(function () { reset(); });
    });
  });
  var print = document.getElementById("print-board");
  if (print) { print.addEventListener("click", function () { window.print(); }); }
}());
