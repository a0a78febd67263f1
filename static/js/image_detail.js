// The detail page: "Actual size (100 %)" toggles in place (without JavaScript it is a plain GET of ?size=),
// and ← / → follow the previous and next links while the larger view is closed.
(function () {
  "use strict";
  var frame = document.getElementById("detail-image");
  var toggle = document.querySelector("[data-image-size]");
  if (frame && toggle) {
    toggle.addEventListener("click", function (event) {
      event.preventDefault();
      var actual = frame.classList.toggle("actual-size");
      toggle.setAttribute("aria-pressed", String(actual));
      toggle.value = actual ? "fit" : "actual";
      var url = new URL(window.location.href);
      if (actual) url.searchParams.set("size", "actual");
      else url.searchParams.delete("size");
      window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    // Arrows keep their own meaning in fields, in an open dialog, and in the scrolled 100 % frame.
    if (document.querySelector("dialog[open]")) return;
    if (event.target.closest("input, textarea, select, #detail-image")) return;
    var link = document.querySelector(event.key === "ArrowLeft" ? "a[rel=prev]" : "a[rel=next]");
    if (link) link.click();
  });
})();
