// Stars and ratings in the larger view: F stars or unstars, 1–5 rate, 0 clears your rating (the buttons do the
// same), sent to the API with the page's CSRF token; the tile under the view shows the change at once. Without
// JavaScript the view never opens, and the tiles' and detail page's own forms do this.
(function () {
  "use strict";
  var link = null; // the link of the image shown, carrying data-view-marks (its API URL)

  function part(id) {
    return document.getElementById(id);
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function summary(body) {
    if (!body.rating_count) return "";
    return body.rating_average.toFixed(1) + " ★ · " + body.rating_count + " rating" + (body.rating_count === 1 ? "" : "s")
      + (body.my_rating ? " · yours " + body.my_rating : "");
  }

  function paint(starred, rating, text) {
    var star = part("lightbox-star");
    star.setAttribute("aria-pressed", String(starred));
    star.textContent = starred ? "★ Starred" : "☆ Star";
    star.classList.toggle("on", starred);
    document.querySelectorAll("[data-lightbox-rate]").forEach(function (button) {
      var value = Number(button.dataset.lightboxRate);
      if (!value) return;
      button.setAttribute("aria-pressed", String(value === rating));
      button.classList.toggle("on", value <= rating);
    });
    if (text !== undefined) part("lightbox-rating-summary").textContent = text;
  }

  // The tile (or detail page) under the view: its star form and summary follow the change.
  function paintTile(id, body) {
    var block = part("marks-" + id);
    if (!block) return;
    var button = block.querySelector(".star");
    if (button) {
      button.setAttribute("aria-pressed", String(body.starred));
      button.classList.toggle("on", body.starred);
      button.querySelector("[aria-hidden]").textContent = body.starred ? "★" : "☆";
      button.title = body.starred ? "Unstar" : "Star";
      button.form.querySelector("[name=starred]").value = body.starred ? "0" : "1";
    }
    var text = block.querySelector("[data-rating-summary]");
    if (text) text.textContent = summary(body);
  }

  function send(path, method, payload) {
    if (!link) return;
    var shown = link;
    var options = { method: method, credentials: "same-origin",
                    headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" } };
    if (payload) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(payload);
    }
    part("lightbox-status").textContent = "";
    fetch(shown.dataset.viewMarks + path, options).then(function (response) {
      if (!response.ok) throw new Error(String(response.status));
      return response.json();
    }).then(function (body) {
      shown.dataset.viewStarred = body.starred ? "1" : "0";
      shown.dataset.viewRating = String(body.my_rating || 0);
      shown.dataset.viewSummary = summary(body);
      if (shown === link) paint(body.starred, body.my_rating || 0, summary(body));
      paintTile(shown.dataset.view, body);
    }).catch(function () {
      part("lightbox-status").textContent = "Not saved: try again.";
    });
  }

  function toggleStar() {
    send("/star", link.dataset.viewStarred === "1" ? "DELETE" : "PUT");
  }

  function rate(value) {
    if (value) send("/rating", "PUT", { rating: value });
    else send("/rating", "DELETE");
  }

  function collect() {
    var select = part("lightbox-collection");
    if (!link || !select) return;
    var form = new FormData();
    form.append("ids", link.dataset.view);
    form.append("collection_id", select.value);
    fetch("/collections/add", { method: "POST", body: form, credentials: "same-origin",
                                headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      }).then(function (html) {
        var answer = new DOMParser().parseFromString(html, "text/html").getElementById("gallery-announcement");
        part("lightbox-status").textContent = answer ? answer.textContent : "Added.";
      }).catch(function () {
        part("lightbox-status").textContent = "Not added: try again.";
      });
  }

  document.addEventListener("lightbox:show", function (event) {
    link = event.detail.link;
    var marked = Boolean(link.dataset.viewMarks);
    part("lightbox-marks").hidden = !marked;
    part("lightbox-status").textContent = "";
    if (!marked) return;
    var block = part("marks-" + link.dataset.view);
    var text = block ? block.querySelector("[data-rating-summary]") : null;
    paint(link.dataset.viewStarred === "1", Number(link.dataset.viewRating || 0), text ? text.textContent : "");
  }, true);

  document.addEventListener("click", function (event) {
    if (!link || !part("lightbox") || !part("lightbox").open) return;
    if (event.target.closest("#lightbox-star")) toggleStar();
    var button = event.target.closest("[data-lightbox-rate]");
    if (button) rate(Number(button.dataset.lightboxRate));
    if (event.target.closest("#lightbox-collect")) collect();
  });

  document.addEventListener("keydown", function (event) {
    var view = part("lightbox");
    if (!view || !view.open || !link || !link.dataset.viewMarks) return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.closest && event.target.closest("input, select, textarea")) return;
    if (event.key === "f" || event.key === "F") {
      event.preventDefault();
      toggleStar();
    } else if (/^[0-5]$/.test(event.key)) {
      event.preventDefault();
      rate(Number(event.key));
    }
  });
})();
