// rq-dashboard's pages: show the sentence the server answers to an action (compact, requeue, empty, delete),
// which the dashboard's own scripts throw away. Loaded by templates/rq_dashboard/footer.html.
(function () {
  "use strict";
  var box = document.getElementById("rq-message");
  if (!box || !window.jQuery) {
    return;
  }
  var timer = null;

  function answerOf(xhr) {
    if (xhr.responseJSON) {
      return xhr.responseJSON;
    }
    try {
      return JSON.parse(xhr.responseText);
    } catch (error) {
      return null;
    }
  }

  window.jQuery(document).on("ajaxComplete", function (event, xhr, settings) {
    var answer = (settings.type || "").toUpperCase() === "POST" ? answerOf(xhr) : null;
    if (!answer || !answer.message) {
      return;
    }
    box.textContent = answer.message;
    box.classList.toggle("alert-info", answer.status === "OK");
    box.classList.toggle("alert-danger", answer.status !== "OK");
    box.hidden = false;
    window.clearTimeout(timer);
    timer = window.setTimeout(function () { box.hidden = true; }, 10000);
  });
}());
