/* StoryHub story form: record in the browser (with level meter, pause/resume; "Record again"
   asks before a take is deleted) and upload with a progress bar; problems the server finds are
   listed at the top, each linked to its field, and the fields marked. Without JavaScript the
   form still uploads a chosen file the ordinary way, and the page lists problems the same. */
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
  var take = document.getElementById("rec-take");
  var lengthEl = document.getElementById("rec-length");
  var confirmBox = document.getElementById("rec-confirm");
  var confirmText = document.getElementById("rec-confirm-text");
  var keepBtn = document.getElementById("rec-keep");
  var discardBtn = document.getElementById("rec-discard");
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

  // --- Problems: listed at the top of the form, each linked to its field, the field marked --
  var errorList = errorBox.querySelector(".error-summary-list");
  function unmark() {
    Array.prototype.forEach.call(form.querySelectorAll(".error-message"), function (p) { p.remove(); });
    Array.prototype.forEach.call(form.querySelectorAll(".field.has-error"), function (f) {
      f.classList.remove("has-error");
    });
    Array.prototype.forEach.call(form.querySelectorAll('[aria-invalid="true"]'), function (el) {
      el.setAttribute("aria-invalid", "false");
      var described = (el.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
        return id && id !== el.id + "-error";
      });
      if (described.length) { el.setAttribute("aria-describedby", described.join(" ")); }
      else { el.removeAttribute("aria-describedby"); }
    });
  }
  function mark(input, message) {
    var box = input.closest(".field");
    if (!box || document.getElementById(input.id + "-error")) { return; }
    box.classList.add("has-error");
    var p = document.createElement("p");
    p.className = "error-message";
    p.id = input.id + "-error";
    var hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = "Error: ";
    p.appendChild(hidden);
    p.appendChild(document.createTextNode(message));
    var before = input.closest(".checkbox") || input;
    before.parentNode.insertBefore(p, before);
    input.setAttribute("aria-invalid", "true");
    var described = input.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", (described ? described + " " : "") + p.id);
  }
  function clearErrors() {
    errorBox.hidden = true;
    errorList.textContent = "";
    unmark();
  }
  // errors: [{field: an input's id or null, message}], as the server sends them.
  function showErrors(errors, link) {
    clearErrors();
    errors.forEach(function (error) {
      var li = document.createElement("li");
      var input = error.field && document.getElementById(error.field);
      if (input) {
        var a = document.createElement("a");
        a.href = "#" + error.field;
        a.textContent = error.message;
        li.appendChild(a);
        mark(input, error.message);
      } else {
        li.textContent = error.message;
      }
      if (link) {
        var open = document.createElement("a");
        open.href = link;
        open.textContent = " Open the existing story.";
        li.appendChild(open);
        link = null;
      }
      errorList.appendChild(li);
    });
    errorBox.hidden = false;
    errorBox.focus();
    errorBox.scrollIntoView({ block: "start" });
  }
  function showError(text, field) { showErrors([{ field: field || null, message: text }]); }
  // A link in the summary puts the cursor in its field, its label in sight (GOV.UK).
  errorBox.addEventListener("click", function (e) {
    var a = e.target.closest('a[href^="#"]');
    var input = a && document.getElementById(a.getAttribute("href").slice(1));
    if (!input) { return; }
    e.preventDefault();
    var label = form.querySelector('label[for="' + input.id + '"]');
    input.focus({ preventScroll: true });
    (label || input).scrollIntoView({ block: "center" });
  });
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

  // A recording made here has no length in its header until it is read to the end: ask the
  // player to look for its end, so it shows how long it is rather than 0:00.
  preview.addEventListener("loadedmetadata", function () {
    if (preview.duration === Infinity) { preview.currentTime = 1e101; }
  });
  preview.addEventListener("durationchange", function () {
    if (isFinite(preview.duration) && preview.currentTime > 0 && preview.paused) {
      preview.currentTime = 0;
    }
  });

  function discardTake() {
    if (preview.src) { URL.revokeObjectURL(preview.src); }
    preview.removeAttribute("src");
    preview.load();
    take.hidden = true;
    recording = null;
    form.removeAttribute("data-recorded");
  }

  // "Record again" deletes the take only once the reporter says so: it has not been saved.
  startBtn.addEventListener("click", function () {
    if (recording && !uploaded) {
      preview.pause();
      document.getElementById("rec-confirm-length").textContent = fmt(elapsed);
      confirmBox.hidden = false;
      confirmText.focus();
      return;
    }
    startRecording();
  });
  keepBtn.addEventListener("click", function () {
    confirmBox.hidden = true;
    setStatus("Kept the recording of " + fmt(elapsed) + ".");
    startBtn.focus();
  });
  discardBtn.addEventListener("click", function () {
    confirmBox.hidden = true;
    discardTake();
    startRecording();
  });

  function startRecording() {
    clearErrors();
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
        lengthEl.textContent = fmt(elapsed);
        take.hidden = false;
        stream.getTracks().forEach(function (t) { t.stop(); });
        cancelAnimationFrame(rafId);
        meter.style.width = "0";
        if (audioCtx) { audioCtx.close(); audioCtx = null; }
        setStatus("Recorded " + fmt(elapsed) + ". Listen back, then fill in the consent and save.");
        // Beside the take, "Record again" is a secondary action; saving is the next step.
        startBtn.textContent = "Record again";
        startBtn.classList.add("button-secondary");
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
                "in your browser settings, or upload a recording instead.", "audio");
    });
  }

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
    clearErrors();
    var data = new FormData(form);
    var chosen = fileInput.files && fileInput.files[0];
    if (!chosen && recording) {
      data.set("audio", recording, recording.name);
    }
    var size = chosen ? chosen.size : (recording ? recording.size : 0);
    if (!chosen && !recording) {
      showError("Choose a recording to upload, or record one.", "audio");
      return;
    }
    if (size > maxBytes) {
      showError("That file is too large: the limit is " + Math.round(maxBytes / 1048576) +
                " MB. Split the recording into shorter parts.", "audio");
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
      var errors = body.errors && body.errors.length ? body.errors :
        [{ field: xhr.status === 413 ? "audio" : null, message: message }];
      showErrors(errors, body.link);
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
