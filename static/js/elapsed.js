// Counts the "Generating · N s" timers up between polls, starting from the seconds the server rendered,
// so no clock needs to agree with the server's.
(function () {
  "use strict";
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".elapsed[data-elapsed]").forEach(function (el) {
      if (!el.dataset.startedAt) {
        el.dataset.startedAt = String(now - Number(el.dataset.elapsed) * 1000);
      }
      el.textContent = Math.floor((now - Number(el.dataset.startedAt)) / 1000) + " s";
    });
  }
  window.setInterval(tick, 1000);
})();
