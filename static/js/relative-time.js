// Every <time datetime> the server rendered in UTC reads as "2 minutes ago" / "yesterday" in the visitor's
// language, with the exact local time on hover; fragments htmx swaps in are done too, and all refresh each minute.
(function () {
  "use strict";
  var rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  var exact = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  // The largest unit that fits, with how many seconds it holds.
  var UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600],
               ["minute", 60]];

  function relative(date, now) {
    var seconds = (date.getTime() - now) / 1000;
    for (var i = 0; i < UNITS.length; i++) {
      var unit = UNITS[i];
      if (Math.abs(seconds) >= unit[1]) {
        return rtf.format(Math.round(seconds / unit[1]), unit[0]);
      }
    }
    return rtf.format(0, "second");  // "now"
  }

  function render(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      el.textContent = relative(date, now);
      el.title = exact.format(date);
      el.classList.add("relative-time");
    });
  }

  document.addEventListener("htmx:load", function (event) { render(event.detail.elt); });
  document.addEventListener("htmx:afterSettle", function () { render(document); });
  render(document);
  window.setInterval(function () { render(document); }, 60000);
})();
