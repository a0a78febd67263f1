// The larger view: a link carrying data-view (templates/media/_view_attrs.html) opens its full image in
// <dialog id="lightbox">, with previous/next over the page's images in page order (and ↑/↓ along a comparison grid's columns), and ?view=<id> in the URL
// so Back closes it and a link with it opens it. Links are looked up when needed, never bound once: the
// generate page's cards and the gallery's "Load more" bring new ones at any time.
(function () {
  "use strict";
  var current = null; // the id shown
  var pushed = false; // opening added a history entry, so closing takes it back
  var fromHistory = false; // closing because Back took ?view away: history is already right
  var expectingPop = false; // our own history.back() on close
  var loadingMore = false; // "Next" past the last loaded gallery image asked for the next page

  // Looked up on each use: htmx's history restore replaces the body, dialog included.
  function part(id) {
    return document.getElementById(id);
  }

  function dialog() {
    return part("lightbox");
  }

  function links() {
    return Array.from(document.querySelectorAll("a[data-view]"));
  }

  function linkFor(id) {
    return links().find(function (link) { return link.dataset.view === id; });
  }

  function moreLink() {
    return document.querySelector(".load-more a");
  }

  function urlWith(id) {
    var url = new URL(window.location.href);
    if (id === null) url.searchParams.delete("view");
    else url.searchParams.set("view", id);
    return url.pathname + url.search + url.hash;
  }

  function updateSteps() {
    var all = links();
    var index = all.findIndex(function (link) { return link.dataset.view === current; });
    var more = Boolean(moreLink());
    var ends = [index <= 0, index === all.length - 1 && !more];
    dialog().querySelectorAll("[data-lightbox-step]").forEach(function (button) {
      button.hidden = all.length < 2 && !more;
      button.setAttribute("aria-disabled", String(ends[button.dataset.lightboxStep === "1" ? 1 : 0]));
    });
    part("lightbox-position").textContent = loadingMore ? "Loading more…"
      : (index + 1) + " of " + all.length + (more ? ", more to load" : "");
  }

  function show(link) {
    var data = link.dataset;
    var thumb = link.querySelector("img");
    var image = part("lightbox-image");
    current = data.view;
    image.width = Number(data.viewWidth);
    image.height = Number(data.viewHeight);
    image.alt = thumb ? thumb.alt : "";
    image.src = data.viewSrc;
    part("lightbox-prompt").textContent = data.viewPrompt;
    part("lightbox-download").href = data.viewDownload;
    // A share link's page has neither: its images have no page of their own to reuse or detail; an upload has no
    // prompt to reuse.
    ["reuse", "details"].forEach(function (name) {
      var target = data["view" + name.charAt(0).toUpperCase() + name.slice(1)];
      part("lightbox-" + name).hidden = !target;
      if (target) part("lightbox-" + name).href = target;
    });
    pointEditMenu(data.viewEdit || "");
    updateSteps();
    reachPrompt();
    // static/js/marks.js shows this image's star and rating.
    dialog().dispatchEvent(new CustomEvent("lightbox:show", { detail: { link: link } }));
  }

  // The Edit menu acts on the image shown: its forms and links are pointed at it (none for another's image).
  function pointEditMenu(base) {
    var menu = part("lightbox-edit");
    if (!menu) return;
    menu.hidden = !base;
    menu.querySelectorAll("[data-edit-operation]").forEach(function (target) {
      var url = base + target.dataset.editOperation;
      if (target.tagName === "FORM") target.action = url;
      else target.href = url;
    });
    var more = menu.querySelector("details");
    if (more) more.open = false;
  }

  // A long prompt scrolls in its own box; only then is it a Tab stop, so the keyboard can scroll it too.
  function reachPrompt() {
    var box = part("lightbox-prompt");
    if (box.scrollHeight > box.clientHeight) box.setAttribute("tabindex", "0");
    else box.removeAttribute("tabindex");
  }

  function open(link, push) {
    if (!dialog().open) dialog().showModal();
    show(link);
    if (push) {
      window.history.pushState({ lightbox: current }, "", urlWith(current));
      pushed = true;
    }
  }

  function step(delta) {
    var all = links();
    var index = all.findIndex(function (link) { return link.dataset.view === current; });
    var target = all[index + delta];
    if (index >= 0 && target) {
      show(target);
      window.history.replaceState(window.history.state, "", urlWith(current));
    } else if (delta > 0 && moreLink() && !loadingMore) {
      loadingMore = true; // htmx appends the next page; htmx:afterSettle steps on
      updateSteps();
      moreLink().click();
    }
  }

  function onViewClick(event) {
    var button = event.target.closest("[data-lightbox-step]");
    if (button) {
      if (button.getAttribute("aria-disabled") !== "true") step(Number(button.dataset.lightboxStep));
    } else if (event.target === dialog() || event.target.hasAttribute("data-lightbox-backdrop")
               || event.target.closest("[data-lightbox-close]")) {
      dialog().close();
    }
  }

  document.addEventListener("click", function (event) {
    if (dialog() && dialog().contains(event.target)) {
      onViewClick(event);
      return;
    }
    if (!dialog() || event.defaultPrevented || event.button !== 0) return;
    // A modified click still opens the detail page, in a new tab or window.
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var link = event.target.closest("a[data-view]");
    if (!link) return;
    event.preventDefault();
    open(link, true);
  });

  // A modal <dialog> keeps focus off the page, but Tab past its last control still leaves for the browser's own
  // toolbar (and from there to the page's top): wrap it round instead, as a trap should.
  function wrapTab(event) {
    var controls = Array.from(dialog().querySelectorAll("a[href], button, [tabindex='0']")).filter(function (el) {
      return el.checkVisibility();
    });
    var edge = event.shiftKey ? controls[0] : controls[controls.length - 1];
    if (!controls.length || (document.activeElement !== edge && dialog().contains(document.activeElement))) return;
    event.preventDefault();
    (event.shiftKey ? controls[controls.length - 1] : controls[0]).focus();
  }

  document.addEventListener("keydown", function (event) {
    if (!dialog() || !dialog().open) return;
    if (event.key === "Tab") return wrapTab(event);
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return; // Alt+← is the browser's Back
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      if (stepColumn(event.key === "ArrowUp" ? -1 : 1)) event.preventDefault();
      return;
    }
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    event.preventDefault();
    step(event.key === "ArrowLeft" ? -1 : 1);
  });

  // A comparison grid's cards carry their cell (templates/batches/_card.html): ↑/↓ go to the image above or
  // below in the same column of the same grid (true when the image is in a grid); ←/→ already follow the row,
  // as the cards are in row order.
  function stepColumn(delta) {
    var link = current && linkFor(current);
    var card = link && link.closest("[data-cell-x]");
    if (!card) return false;
    var y = Number(card.dataset.cellY || 0) + delta;
    var selector = "[data-cell-x='" + card.dataset.cellX + "'][data-cell-y='" + y + "']" +
      (card.dataset.cellZ !== undefined ? "[data-cell-z='" + card.dataset.cellZ + "']" : "");
    var target = document.querySelector(selector + " a[data-view]");
    if (target) {
      show(target);
      window.history.replaceState(window.history.state, "", urlWith(current));
    }
    return true; // in a grid, ↑ / ↓ always mean the column, even at its end
  }

  // Capturing: "close" does not bubble.
  document.addEventListener("close", function (event) {
    if (event.target !== dialog()) return;
    var link = current && linkFor(current);
    if (link) link.focus(); // the image shown last, which is the opener unless the person moved on
    if (!fromHistory) {
      if (pushed) {
        expectingPop = true;
        window.history.back();
      } else {
        window.history.replaceState(window.history.state, "", urlWith(null));
      }
    }
    current = null;
    pushed = fromHistory = loadingMore = false;
  }, true);

  // Capturing, so it runs before htmx's window.onpopstate: the page under the view has not changed, and htmx
  // restoring its history snapshot (or refetching the page) there would be wasted at best.
  window.addEventListener("popstate", function (event) {
    var id = new URL(window.location.href).searchParams.get("view");
    var link = id && linkFor(id);
    var ours = event.state && event.state.lightbox;
    if (!dialog() || (!dialog().open && !expectingPop && !ours)) return;
    event.stopImmediatePropagation();
    expectingPop = false;
    if (link) {
      open(link, false);
      pushed = Boolean(ours); // Forward onto our entry: the one under it is still there to go back to
    } else if (dialog().open) {
      fromHistory = true;
      dialog().close();
    }
  }, true);

  document.addEventListener("htmx:afterSettle", function () {
    if (!dialog() || !dialog().open) return;
    if (loadingMore) {
      loadingMore = false;
      step(1);
    } else {
      updateSteps(); // new cards may have arrived
    }
  });
  ["htmx:responseError", "htmx:sendError"].forEach(function (name) {
    document.addEventListener(name, function () {
      if (loadingMore) {
        loadingMore = false;
        updateSteps();
      }
    });
  });

  var initial = new URL(window.location.href).searchParams.get("view");
  if (initial && dialog()) {
    var link = linkFor(initial);
    if (link) open(link, false);
    // Further down a gallery than its first page: the image's own page has the view and the gallery's neighbours.
    else if (moreLink() && /^[0-9]+$/.test(initial)) window.location.replace("/images/" + initial + "?view=" + initial);
    else window.history.replaceState(window.history.state, "", urlWith(null)); // not on this page (any more)
  }
})();
