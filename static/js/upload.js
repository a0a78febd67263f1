// The upload form (templates/gallery/_upload.html): a chosen file is sent at once, a file dropped anywhere on the
// page goes into the picker and is sent, a file over the limit is refused here before a byte leaves, and the
// server's refusal (422, the form again with its reason) is swapped in as htmx would a success.
(function () {
  "use strict";

  function form() { return document.getElementById("upload-form"); }

  function refuse(message) {
    var old = document.getElementById("upload-error");
    var error = old || document.createElement("p");
    error.id = "upload-error";
    error.className = "error";
    error.setAttribute("role", "alert");
    error.textContent = message;
    if (!old) document.getElementById("upload-drop").appendChild(error);
    var input = document.getElementById("upload-file");
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", "upload-hint upload-error");
  }

  function send() {
    var upload = form();
    var input = document.getElementById("upload-file");
    if (!upload || !input.files.length) return;
    if (input.files[0].size > Number(upload.dataset.maxBytes)) {
      refuse(upload.dataset.tooLarge);
      return;
    }
    upload.requestSubmit();
  }

  function carriesFiles(event) {
    return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0;
  }

  document.addEventListener("change", function (event) {
    if (event.target.id === "upload-file") send();
  });

  document.addEventListener("dragover", function (event) {
    if (!form() || !carriesFiles(event)) return;
    event.preventDefault(); // without it the browser opens the file instead of letting the page take it
    document.body.classList.add("dropping");
  });
  ["dragleave", "dragend"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      if (!event.relatedTarget) document.body.classList.remove("dropping");
    });
  });
  document.addEventListener("drop", function (event) {
    document.body.classList.remove("dropping");
    if (!form() || !carriesFiles(event) || !event.dataTransfer.files.length) return;
    event.preventDefault();
    var transfer = new DataTransfer();
    transfer.items.add(event.dataTransfer.files[0]);
    document.getElementById("upload-file").files = transfer.files;
    send();
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.elt !== form()) return;
    if (event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    } else if (event.detail.xhr.status === 413) { // refused by its length before it was read: say so here
      event.detail.isError = false;
      refuse(form().dataset.tooLarge);
    }
  });
})();
