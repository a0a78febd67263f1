// The gallery's selection: "N selected" in the bar, shift-click ticks a range, the delete dialog names how many,
// and the last message ("Deleted 1 image.") goes once the selection changes. Without JavaScript the boxes still
// submit with the bar's buttons (the confirm page asks instead). On a touch screen a tile's Delete opens its
// confirm page rather than a dialog over the grid.
(function () {
  "use strict";
  var lastClicked = null;

  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll(".tile-select"));
  }

  function refresh() {
    var bar = document.getElementById("bulk-form");
    if (!bar) return;
    var count = boxes().filter(function (box) { return box.checked; }).length;
    var label = document.getElementById("bulk-selected");
    var text = count ? count + " selected" : "None selected";
    if (label.textContent !== text) label.textContent = text; // unchanged text: no mutation, no loop
    ["bulk-delete", "bulk-download"].forEach(function (id) {
      document.getElementById(id).disabled = count === 0;
    });
    bar.querySelectorAll(".bulk-edit").forEach(function (button) { button.disabled = count === 0; });
    document.getElementById("bulk-delete").setAttribute("hx-confirm",
      "Delete " + (count === 1 ? "this image" : "these " + count + " images") + "? This cannot be undone.");
  }

  document.addEventListener("click", function (event) {
    var box = event.target.closest ? event.target.closest(".tile-select") : null;
    if (!box) return;
    var all = boxes();
    if (event.shiftKey && lastClicked && all.indexOf(lastClicked) >= 0) {
      var from = all.indexOf(lastClicked), to = all.indexOf(box);
      all.slice(Math.min(from, to), Math.max(from, to) + 1).forEach(function (each) { each.checked = box.checked; });
    }
    lastClicked = box;
  });
  document.addEventListener("change", function (event) {
    if (!event.target.classList || !event.target.classList.contains("tile-select")) return;
    var announcement = document.getElementById("gallery-announcement");
    if (announcement) announcement.textContent = "";
    refresh();
  });

  // Stopped before htmx's own listener on the link sees it, so the link is simply followed: to the confirm page.
  var touch = window.matchMedia("(hover: none)");
  document.addEventListener("click", function (event) {
    if (touch.matches && event.target.closest && event.target.closest(".tile-action.danger")) event.stopPropagation();
  }, true);
  // Tiles come and go in place (load more, a new search, a delete): the count follows.
  new MutationObserver(refresh).observe(document.body, { childList: true, subtree: true });
  refresh();
})();
