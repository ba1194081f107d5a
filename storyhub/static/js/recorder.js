/* StoryHub story form: record in the browser (with level meter, pause/resume) and upload with a
   progress bar. Without JavaScript the form still uploads a chosen file the ordinary way. */
(function () {
  "use strict";
  var form = document.getElementById("story-form");
  if (!form) { return; }
  var recorderBox = document.getElementById("recorder");
  var startBtn = document.getElementById("rec-start");
  var pauseBtn = document.getElementById("rec-pause");
  var stopBtn = document.getElementById("rec-stop");
  var statusEl = document.getElementById("recorder-status");
  var meter = document.getElementById("meter-level");
  var preview = document.getElementById("rec-preview");
  var fileInput = document.getElementById("audio");
  var progressBox = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var uploadStatus = document.getElementById("upload-status");
  var errorBox = document.getElementById("form-error");
  var saveBtn = document.getElementById("save-story");
  var maxBytes = parseInt(form.getAttribute("data-max-mb"), 10) * 1024 * 1024;

  var mediaRecorder = null, stream = null, chunks = [], recording = null;
  var audioCtx = null, analyser = null, rafId = null;
  var elapsed = 0, tickStarted = 0, timer = null, uploaded = false;

  function fmt(seconds) {
    var s = Math.floor(seconds % 60), m = Math.floor(seconds / 60);
    return m + ":" + (s < 10 ? "0" : "") + s;
  }
  function setStatus(text) { statusEl.textContent = text; }
  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    errorBox.setAttribute("tabindex", "-1");
    errorBox.focus();
  }
  function currentSeconds() {
    return elapsed + (tickStarted ? (Date.now() - tickStarted) / 1000 : 0);
  }
  function startTicking() {
    tickStarted = Date.now();
    timer = setInterval(function () { setStatus("Recording… " + fmt(currentSeconds())); }, 500);
  }
  function stopTicking() {
    elapsed = currentSeconds();
    tickStarted = 0;
    clearInterval(timer);
  }
  function drawMeter() {
    var data = new Uint8Array(analyser.fftSize);
    analyser.getByteTimeDomainData(data);
    var peak = 0;
    for (var i = 0; i < data.length; i++) { peak = Math.max(peak, Math.abs(data[i] - 128)); }
    meter.style.width = Math.min(100, Math.round(peak / 128 * 140)) + "%";
    rafId = requestAnimationFrame(drawMeter);
  }
  function pickType() {
    var types = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4", "audio/webm"];
    for (var i = 0; i < types.length; i++) {
      if (MediaRecorder.isTypeSupported(types[i])) { return types[i]; }
    }
    return "";
  }
  function extensionFor(type) {
    if (type.indexOf("ogg") >= 0) { return "ogg"; }
    if (type.indexOf("mp4") >= 0) { return "m4a"; }
    return "webm";
  }

  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder) {
    recorderBox.hidden = false;
  }

  startBtn.addEventListener("click", function () {
    errorBox.hidden = true;
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (s) {
      stream = s;
      chunks = [];
      recording = null;
      elapsed = 0;
      var type = pickType();
      mediaRecorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
      mediaRecorder.addEventListener("dataavailable", function (e) {
        if (e.data && e.data.size) { chunks.push(e.data); }
      });
      mediaRecorder.addEventListener("stop", function () {
        var mime = mediaRecorder.mimeType || type || "audio/webm";
        recording = new Blob(chunks, { type: mime });
        recording.name = "recording." + extensionFor(mime);
        preview.src = URL.createObjectURL(recording);
        preview.hidden = false;
        stream.getTracks().forEach(function (t) { t.stop(); });
        cancelAnimationFrame(rafId);
        meter.style.width = "0";
        if (audioCtx) { audioCtx.close(); audioCtx = null; }
        setStatus("Recorded " + fmt(elapsed) + ". Listen back, then fill in the consent and save.");
        startBtn.textContent = "Record again";
        startBtn.disabled = false;
        pauseBtn.disabled = true;
        stopBtn.disabled = true;
        form.setAttribute("data-recorded", "yes");
      });
      mediaRecorder.start(1000);
      audioCtx = new (window.AudioContext || window.webkitAudioContext)();
      analyser = audioCtx.createAnalyser();
      analyser.fftSize = 1024;
      audioCtx.createMediaStreamSource(stream).connect(analyser);
      drawMeter();
      startTicking();
      startBtn.disabled = true;
      pauseBtn.disabled = false;
      pauseBtn.textContent = "Pause";
      stopBtn.disabled = false;
      setStatus("Recording… 0:00");
    }).catch(function () {
      showError("StoryHub could not use the microphone. Allow microphone access for this site " +
                "in your browser settings, or upload a recording instead.");
    });
  });

  pauseBtn.addEventListener("click", function () {
    if (!mediaRecorder) { return; }
    if (mediaRecorder.state === "recording") {
      mediaRecorder.pause();
      stopTicking();
      pauseBtn.textContent = "Resume";
      setStatus("Paused at " + fmt(elapsed) + ".");
    } else if (mediaRecorder.state === "paused") {
      mediaRecorder.resume();
      startTicking();
      pauseBtn.textContent = "Pause";
    }
  });

  stopBtn.addEventListener("click", function () {
    if (mediaRecorder && mediaRecorder.state !== "inactive") {
      stopTicking();
      mediaRecorder.stop();
    }
  });

  window.addEventListener("beforeunload", function (e) {
    if (recording && !uploaded) { e.preventDefault(); e.returnValue = ""; }
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    errorBox.hidden = true;
    var data = new FormData(form);
    var chosen = fileInput.files && fileInput.files[0];
    if (!chosen && recording) {
      data.set("audio", recording, recording.name);
    }
    var size = chosen ? chosen.size : (recording ? recording.size : 0);
    if (!chosen && !recording) {
      showError("Choose a recording to upload, or record one.");
      return;
    }
    if (size > maxBytes) {
      showError("That file is too large: the limit is " + Math.round(maxBytes / 1048576) +
                " MB. Split the recording into shorter parts.");
      return;
    }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action") || window.location.pathname);
    xhr.setRequestHeader("X-Requested-With", "storyhub-recorder");
    xhr.responseType = "json";
    progressBox.hidden = false;
    saveBtn.disabled = true;
    xhr.upload.addEventListener("progress", function (ev) {
      if (!ev.lengthComputable) { return; }
      var pct = Math.round(ev.loaded / ev.total * 100);
      bar.value = pct;
      bar.textContent = pct + "%";
      uploadStatus.textContent = pct < 100 ? "Uploading… " + pct + "%" :
        "Uploaded. Checking the recording and saving it…";
    });
    xhr.addEventListener("load", function () {
      var body = xhr.response || {};
      if (xhr.status === 201 && body.redirect) {
        uploaded = true;
        window.location.assign(body.redirect);
        return;
      }
      saveBtn.disabled = false;
      progressBox.hidden = true;
      var message = body.error || (xhr.status === 413 ?
        "That file is too large. Split the recording into shorter parts." :
        "The story could not be saved (error " + xhr.status + "). Nothing was stored; try again.");
      showError(message);
      if (body.link) {
        var a = document.createElement("a");
        a.href = body.link;
        a.textContent = " Open the existing story.";
        errorBox.appendChild(a);
      }
    });
    xhr.addEventListener("error", function () {
      saveBtn.disabled = false;
      progressBox.hidden = true;
      showError("The connection was lost while uploading. Nothing was stored. Your recording " +
                "is still on this page: check your signal and press Save story again.");
    });
    xhr.send(data);
  });
})();
