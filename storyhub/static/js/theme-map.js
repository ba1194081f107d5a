/* Theme map: passages as dots coloured by theme (plotly.js, served from the installed package). */
(function () {
  "use strict";
  var box = document.getElementById("theme-map");
  if (!box || !window.Plotly) { return; }
  function wrap(text) {
    var words = text.split(" "), lines = [], line = "";
    words.forEach(function (w) {
      if ((line + " " + w).length > 60) { lines.push(line); line = w; } else { line = line ? line + " " + w : w; }
    });
    lines.push(line);
    return lines.join("<br>");
  }
  fetch(box.getAttribute("data-url"), { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (data) {
      var traces = data.traces.map(function (t) {
        return { type: "scatter", mode: "markers", name: t.name, x: t.x, y: t.y,
                 text: t.text.map(wrap), hoverinfo: "text+name",
                 marker: { size: 9, opacity: 0.8, color: t.name === "No theme" ? "#8a8a8a" : undefined } };
      });
      window.Plotly.newPlot(box, traces, {
        margin: { l: 10, r: 10, t: 10, b: 10 }, hovermode: "closest",
        xaxis: { visible: false }, yaxis: { visible: false },
        legend: { orientation: "h", y: -0.05 }, height: Math.max(420, Math.min(window.innerHeight * 0.75, 720))
      }, { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] });
      box.setAttribute("data-ready", String(traces.length));
    });
}());
