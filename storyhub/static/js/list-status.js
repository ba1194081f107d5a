/* Keep the state column of the stories list current while stories are being transcribed. */
(function () {
  "use strict";
  var cells = Array.prototype.slice.call(document.querySelectorAll("[data-status-url]"));
  function poll() {
    cells = cells.filter(function (cell) { return cell.hasAttribute("data-status-url"); });
    if (!cells.length) { return; }
    cells.forEach(function (cell) {
      fetch(cell.getAttribute("data-status-url"), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          var name = s.status.charAt(0).toUpperCase() + s.status.slice(1);
          cell.textContent = s.status === "transcribing" ? name + " " + Math.round(s.progress) + "%" : name;
          cell.className = "status status-" + s.status;
          if (s.status !== "queued" && s.status !== "transcribing") {
            cell.removeAttribute("data-status-url");
          }
        })
        .catch(function () {});
    });
    setTimeout(poll, 3000);
  }
  setTimeout(poll, 1500);
})();
