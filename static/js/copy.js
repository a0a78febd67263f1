// "Copy prompt" buttons: copy the text of the element named by data-copy-target. Without JavaScript the
// prompt stays selectable in its read-only box, and the button stays hidden.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copyTarget);
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.value || source.textContent).then(function () {
      button.textContent = "Copied";
    });
  });
  document.querySelectorAll("[data-copy-target]").forEach(function (button) { button.hidden = false; });
})();
