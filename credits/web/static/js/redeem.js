// The shop's redeem screen: a tap on 扫描二维码 starts the rear camera, jsQR reads frames, and the first code
// found fills the code field and submits the look-up (step 1, which changes nothing).
(function () {
  "use strict";
  var scanner = document.querySelector("[data-scanner]");
  var form = document.querySelector("[data-redeem-form]");
  if (!scanner || !form) return;
  var input = form.querySelector("[data-code-input]");
  var video = scanner.querySelector("[data-scan-video]");
  var start = scanner.querySelector("[data-scan-start]");
  var stop = scanner.querySelector("[data-scan-stop]");
  var status = scanner.querySelector("[data-scan-status]");
  var canvas = document.createElement("canvas");
  var context = canvas.getContext("2d", { willReadFrequently: true });
  var stream = null;

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("flash-error", !!isError);
    status.hidden = !text;
  }

  function halt() {
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    video.hidden = true;
    stop.hidden = true;
    start.hidden = false;
  }

  function tick() {
    if (!stream) return;
    if (video.readyState === video.HAVE_ENOUGH_DATA && video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      var image = context.getImageData(0, 0, canvas.width, canvas.height);
      var found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
      if (found && found.data) {
        input.value = found.data.trim();
        halt();
        say(scanner.dataset.foundLabel, false);
        if (form.requestSubmit) form.requestSubmit(); else form.submit();
        return;
      }
    }
    window.requestAnimationFrame(tick);
  }

  start.addEventListener("click", function () {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.jsQR) {
      say(scanner.dataset.noCameraLabel, true);
      return;
    }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        video.hidden = false;
        stop.hidden = false;
        start.hidden = true;
        say("", false);
        return video.play();
      })
      .then(function () { window.requestAnimationFrame(tick); })
      .catch(function () { halt(); say(scanner.dataset.noCameraLabel, true); });
  });
  stop.addEventListener("click", halt);
})();
