// Counts the "Generating · N s" timers up, and the "~N s left" estimates down, between polls, starting from the
// seconds the server rendered, so no clock needs to agree with the server's.
(function () {
  "use strict";
  function since(el, seconds, now) {
    if (!el.dataset.seenAt) {
      el.dataset.seenAt = String(now - seconds * 1000);
    }
    return Math.floor((now - Number(el.dataset.seenAt)) / 1000);
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".elapsed[data-elapsed]").forEach(function (el) {
      el.textContent = since(el, Number(el.dataset.elapsed), now) + " s";
    });
    document.querySelectorAll(".eta[data-eta]").forEach(function (el) {
      var left = Number(el.dataset.eta) - since(el, 0, now);
      el.textContent = left > 0 ? "~" + left + " s left" : "Almost done";
    });
  }
  window.setInterval(tick, 1000);
})();
