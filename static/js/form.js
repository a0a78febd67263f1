// The home form, enhanced: Ctrl/Cmd+Enter generates, "Random" rolls a seed in place, "Recent prompts" fills a
// row, rows removed in place are renumbered, a row scrolled into view stays clear of the Generate bar, and a
// counter appears near the 10,000-character limit. Without JavaScript every control is a plain form field or link
// and the server does the same work.
(function () {
  "use strict";
  var form = document.getElementById("prompt-form");
  if (!form) return;
  var LIMIT = 10000;
  var SHOW_FROM = 9000;
  var ANNOUNCE_AFTER_MS = 1500; // a pause in typing, so a screen reader is not told every keystroke
  var list = document.getElementById("prompt-list");
  var lastPrompt = null;
  var pendingFocus = null;

  function prompts() { return Array.prototype.slice.call(list.querySelectorAll("textarea.prompt-input")); }

  // --- Ctrl/Cmd+Enter -----------------------------------------------------------------------------
  form.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.target.tagName !== "TEXTAREA") return;
    event.preventDefault();
    form.requestSubmit(document.getElementById("generate"));
  });

  // --- Random seed --------------------------------------------------------------------------------
  form.addEventListener("click", function (event) {
    var button = event.target.closest("#roll-seed");
    if (!button) return;
    event.preventDefault();
    var max = Number(button.dataset.maxSeed);
    var seed = document.getElementById("seed");
    seed.value = String(crypto.getRandomValues(new Uint32Array(1))[0] % max + 1);
    seed.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // --- Recent prompts -----------------------------------------------------------------------------
  form.addEventListener("focusin", function (event) {
    if (event.target.matches("textarea.prompt-input")) lastPrompt = event.target;
  });

  function fill(textarea, text) {
    textarea.value = text;
    textarea.dispatchEvent(new Event("input", { bubbles: true })); // the cost and the counter follow
    textarea.focus();
  }

  function emptyRow() {
    if (lastPrompt && lastPrompt.isConnected && !lastPrompt.value.trim()) return lastPrompt;
    return prompts().find(function (textarea) { return !textarea.value.trim(); }) || null;
  }

  form.addEventListener("click", function (event) {
    var link = event.target.closest("a.recent-prompt");
    if (!link) return;
    event.preventDefault();
    var text = link.dataset.prompt;
    var picker = link.closest("details");
    if (picker) picker.open = false;
    var target = emptyRow();
    var add = document.getElementById("add-row");
    if (target) {
      fill(target, text);
    } else if (add && !add.disabled) {
      // The new row arrives from the server; fill it once it is in the list.
      pendingFocus = null;
      var observer = new MutationObserver(function () {
        observer.disconnect();
        var rows = prompts();
        fill(rows[rows.length - 1], text);
      });
      observer.observe(list, { childList: true });
      add.click();
    } else {
      fill(lastPrompt && lastPrompt.isConnected ? lastPrompt : prompts()[prompts().length - 1], text);
    }
  });

  // --- Rows removed in place: renumber the rest, keep the focus in the list -------------------------
  form.addEventListener("click", function (event) {
    var remove = event.target.closest("button.remove-row");
    if (remove) pendingFocus = Number(remove.value);
  });

  function renumber() {
    Array.prototype.forEach.call(list.children, function (row, index) {
      row.querySelectorAll("[id], [for], [name], [aria-describedby]").forEach(function (el) {
        ["id", "for", "name", "aria-describedby"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) el.setAttribute(attr, value.replace(/prompts-\d+/g, "prompts-" + index));
        });
      });
      var label = row.querySelector("label");
      if (label) label.textContent = "Prompt " + (index + 1);
      var button = row.querySelector("button.remove-row");
      if (button) {
        button.value = String(index);
        button.setAttribute("aria-label", "Remove prompt " + (index + 1));
      }
    });
  }

  new MutationObserver(function (mutations) {
    var removed = mutations.some(function (m) { return m.removedNodes.length > 0; });
    renumber();
    if (removed && pendingFocus !== null) {
      var rows = prompts();
      var next = rows[Math.min(pendingFocus, rows.length - 1)];
      pendingFocus = null;
      if (next) next.focus();
    }
  }).observe(list, { childList: true });

  // --- The sticky Generate bar: nothing focused stays under it --------------------------------------
  // A browser scrolls a focused element only when it is outside the window, so a new row (focused by htmx on
  // arrival, or by Recent prompts) could sit behind the bar: it is moved up clear of it, its top kept in view.
  var bar = form.querySelector(".generate-bar");
  var CLEARANCE = 8;

  form.addEventListener("focusin", function (event) {
    if (!bar || bar.contains(event.target)) return;
    var box = event.target.getBoundingClientRect();
    var by = Math.min(box.bottom + CLEARANCE - bar.getBoundingClientRect().top, box.top - CLEARANCE);
    if (by > 0) window.scrollBy(0, by);
  });

  // --- Character counter near the limit -----------------------------------------------------------
  var status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("aria-live", "polite");
  form.appendChild(status);
  var announceTimer = null;

  // As the server counts: trimmed, by code point, each line break sent as CR LF.
  function length(text) {
    var trimmed = text.trim();
    return Array.from(trimmed).length + (trimmed.match(/\n/g) || []).length;
  }

  function counterFor(textarea) {
    var counter = textarea.parentNode.querySelector(":scope > .char-count");
    if (!counter) {
      counter = document.createElement("p");
      counter.className = "char-count";
      textarea.insertAdjacentElement("afterend", counter);
    }
    counter.id = textarea.id + "-count";
    return counter;
  }

  function describedBy(textarea, id, on) {
    var ids = (textarea.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (x) {
      return x && x !== id;
    });
    if (on) ids.push(id);
    if (ids.length) textarea.setAttribute("aria-describedby", ids.join(" "));
    else textarea.removeAttribute("aria-describedby");
  }

  function updateCounter(textarea) {
    var count = length(textarea.value);
    var existing = textarea.parentNode.querySelector(":scope > .char-count");
    if (count < SHOW_FROM && !existing) return null;
    var counter = counterFor(textarea);
    var shown = count >= SHOW_FROM;
    counter.hidden = !shown;
    counter.classList.toggle("over", count > LIMIT);
    counter.textContent = count.toLocaleString("en-US") + " / " + LIMIT.toLocaleString("en-US") +
      (count > LIMIT ? " — " + (count - LIMIT).toLocaleString("en-US") + " too many" : "");
    describedBy(textarea, counter.id, shown);
    return shown ? counter.textContent : null;
  }

  form.addEventListener("input", function (event) {
    var textarea = event.target;
    if (!textarea.matches("textarea.prompt-input, #negative_prompt")) return;
    var text = updateCounter(textarea);
    window.clearTimeout(announceTimer);
    if (text === null) return;
    announceTimer = window.setTimeout(function () { status.textContent = text + " characters"; },
      ANNOUNCE_AFTER_MS);
  });
  form.querySelectorAll("textarea.prompt-input, #negative_prompt").forEach(updateCounter);
})();
