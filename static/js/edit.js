// An operation's form (templates/prompts/edit.html): htmx sends it; a refusal (422), a changed price (409), an
// allowance reached (402) come back as the form's fields with the reason by each, and are swapped in as a success
// would be, leaving the painted mask and the picture as they were.
(function () {
  "use strict";
  var SWAPPED = [402, 409, 422];

  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = document.getElementById("edit-form");
    if (!form || !form.contains(event.detail.elt)) return;
    if (SWAPPED.indexOf(event.detail.xhr.status) >= 0) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // The first refused control (or the button, for a refusal about the whole) takes the focus after a swap.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "edit-fields") return;
    var first = document.querySelector("#edit-fields [aria-invalid='true'], #edit-fields #edit-error");
    if (!first) return;
    var control = first.id === "edit-error" ? document.getElementById("edit-submit") : first;
    control.focus();
  });
})();
