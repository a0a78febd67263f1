// The Generate bar's price, computed in the page from the price table the server writes into #batch-cost, at
// every change of the form: nothing is in flight, so no late answer can show an earlier state of the form. The
// sentence is the one templates/prompts/_cost.html writes (tests/test_e2e_price.py holds the two equal), and
// #expected-credits, which Generate sends, always holds the price shown; the server refuses any other price.
(function () {
  "use strict";
  var form = document.getElementById("prompt-form");
  var bar = document.getElementById("batch-cost");
  var expected = document.getElementById("expected-credits");
  if (!form || !bar || !expected) return;
  var table = JSON.parse(bar.dataset.prices);
  var MAX_PER_PROMPT = 4;
  // What Python's str.strip() removes, so a row counts as a prompt exactly when the server counts it.
  var BLANK = /^[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

  function current() {
    var prompts = Array.prototype.filter.call(form.querySelectorAll("textarea.prompt-input"), function (area) {
      return !BLANK.test(area.value);
    }).length;
    var perPrompt = Number(form.elements.images_per_prompt.value);
    if (!(perPrompt >= 1 && perPrompt <= MAX_PER_PROMPT && perPrompt % 1 === 0)) perPrompt = 1;
    var model = table.models[form.elements.model.value] || table.models[table.default];
    var images = prompts * perPrompt;
    return { prompts: prompts, perPrompt: perPrompt, images: images, model: model, credits: images * model.credits };
  }

  // As Python's "%g" writes a price (six significant digits; prices never reach its exponent form).
  function number(value) { return String(Number(value.toPrecision(6))); }

  function plural(count, word) { return count + " " + word + (count === 1 ? "" : "s"); }

  // The sentence as [before, in bold, after].
  function sentence(cost) {
    if (!cost.images) return ["Write a prompt to see what the batch will cost.", "", ""];
    var head = cost.perPrompt > 1 ? plural(cost.prompts, "prompt") + " × " + cost.perPrompt + " images = " : "";
    var usd = (cost.credits * table.usd_per_credit).toFixed(2);
    return [head + plural(cost.images, "image") + " × " + number(cost.model.credits) + " credits (" +
            cost.model.label + ") = ", number(cost.credits) + " credits", " (about $" + usd + ")" +
            (bar.dataset.demo ? "; the offline demo spends no real credits, but allowances count it" : "") + "."];
  }

  var shown = null;

  function squeeze(text) { return text.replace(/\s+/g, " ").trim(); }

  // A template or a grid is priced by the server's plan (the preview sends #batch-cost and #expected-credits).
  function usesVariations() {
    var expand = form.elements.expand;
    if (expand && expand.value !== "none") return true;
    return ["x", "y", "z"].some(function (axis) {
      var select = form.elements["grid_" + axis + "_option"];
      return select && select.value !== "";
    });
  }

  function update() {
    var preview = document.getElementById("variation-preview");
    if (usesVariations()) {
      shown = null;
      if (preview) preview.dispatchEvent(new Event("preview-needed")); // htmx asks the server, debounced
      return;
    }
    if (preview) preview.replaceChildren(); // its prompts were the template's
    // Found again each time: the preview's answer replaces both elements.
    bar = document.getElementById("batch-cost");
    expected = document.getElementById("expected-credits");
    var cost = current();
    expected.value = number(cost.credits);
    var parts = sentence(cost);
    var key = parts.join("\u0000");
    if (shown === null && squeeze(bar.textContent) === squeeze(parts.join(""))) shown = key; // the server's own
    if (key === shown) return; // unchanged: a screen reader is not told again
    shown = key;
    bar.textContent = parts[0];
    if (parts[1]) {
      var strong = document.createElement("strong");
      strong.textContent = parts[1];
      bar.appendChild(strong);
      bar.appendChild(document.createTextNode(parts[2]));
    }
  }

  // Back to plain prompts: an answer still on its way must not overwrite the price computed here.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.elt && event.detail.elt.id === "variation-preview" && !usesVariations()) {
      event.detail.shouldSwap = false;
    }
  });

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  // Rows added or removed in place (and a recent prompt's new row) change the count without an input event.
  new MutationObserver(update).observe(document.getElementById("prompt-list"), { childList: true });
  window.addEventListener("pageshow", update); // values the browser restored on Back
  update();
})();
