// The generate page tells its tab's owner how the batch goes: "(4/6) Image Generator" in the title while it runs,
// and, if turned on in the account settings, a badge on the icon, a notification while the tab is hidden, a sound.
(function () {
  "use strict";
  var KEY = "imagegen:notifications";
  var APP_TITLE = "Image Generator";
  var originalTitle = document.title;
  var icon = document.querySelector("link[rel~='icon']");
  var originalIcon = icon ? icon.href : null;

  function settings() {
    try { return JSON.parse(window.localStorage.getItem(KEY) || "{}") || {}; } catch (e) { return {}; }
  }

  function batchName() {
    var heading = document.querySelector(".batch-title");
    return heading ? heading.textContent.trim() : "your batch";
  }

  function read() {
    var bar = document.getElementById("batch-progress");
    if (!bar || !bar.dataset.total) return null;
    return {
      finished: Number(bar.dataset.finished), total: Number(bar.dataset.total), made: Number(bar.dataset.made),
      failed: Number(bar.dataset.failed), done: bar.dataset.done === "true", name: batchName()
    };
  }

  function drawBadge(left) {
    if (!icon || !originalIcon) return;
    var image = new Image();
    image.onload = function () {
      var canvas = document.createElement("canvas");
      canvas.width = canvas.height = 32;
      var context = canvas.getContext("2d");
      context.drawImage(image, 0, 0, 32, 32);
      context.fillStyle = "#d93025";
      context.beginPath();
      context.arc(22, 22, 10, 0, 2 * Math.PI);
      context.fill();
      context.fillStyle = "#ffffff";
      context.font = "bold 14px sans-serif";
      context.textAlign = "center";
      context.textBaseline = "middle";
      context.fillText(left > 9 ? "9+" : String(left), 22, 23);
      icon.href = canvas.toDataURL("image/png");
    };
    image.src = originalIcon;
  }

  function beep() {
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      var audio = new Context();
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.1;
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.2);
    } catch (e) { /* no audio: the title and notification still say it */ }
  }

  function notify(title, body) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      var shown = new Notification(title, { body: body, tag: "batch-" + window.location.pathname });
      shown.onclick = function () { window.focus(); shown.close(); };
    } catch (e) { /* some browsers allow notifications only from a service worker */ }
  }

  function show(now, before) {
    var wanted = settings();
    if (now.done) {
      document.title = originalTitle;
      if (icon && originalIcon) icon.href = originalIcon;
    } else {
      document.title = "(" + now.finished + "/" + now.total + ") " + APP_TITLE;
      if (wanted.badge) drawBadge(now.total - now.finished);
    }
    if (!before) return;  // only what changed while this page watched is told
    var hidden = document.visibilityState === "hidden";
    if (now.done && !before.done) {
      if (wanted.notify && hidden) {
        var words = now.made + (now.made === 1 ? " image ready" : " images ready") + " — " + now.name;
        notify(words, now.failed ? now.failed + " failed. Click to open the batch." : "Click to open the batch.");
      }
      if (wanted.sound) beep();
    } else if (!now.done && now.failed > before.failed && wanted.notify && hidden) {
      notify("An image failed — " + now.name, "The rest of the batch carries on. Click to open it.");
    }
  }

  function start() {
    var last = read();
    if (!last) return;
    show(last, null);
    var watched = document.getElementById("batch-progress").parentNode;
    new MutationObserver(function () {
      var now = read();
      if (!now || (last && now.finished === last.finished && now.failed === last.failed && now.done === last.done)) return;
      show(now, last);
      last = now;
    }).observe(watched, { childList: true, subtree: true, attributes: true });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
