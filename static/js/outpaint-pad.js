// Outpaint's preview (templates/prompts/_outpaint_preview.html): the grown canvas drawn from the pad's four numbers,
// the picture at its place and the new area hatched around it, with the size the result will have.
(function () {
  "use strict";
  var figure = document.getElementById("outpaint-preview");
  if (!figure) return;
  var source = document.getElementById("outpaint-source");
  var canvas = document.getElementById("outpaint-canvas");
  var label = document.getElementById("outpaint-size");
  var width = Number(figure.dataset.width);
  var height = Number(figure.dataset.height);
  var LONG_SIDE = 640; // the preview's own resolution

  function side(name) {
    var input = document.querySelector("#edit-form [name='" + name + "']");
    var value = input ? Math.round(Number(input.value)) : 0;
    return value > 0 && isFinite(value) ? value : 0;
  }

  function draw() {
    var left = side("left"), right = side("right"), up = side("up"), down = side("down");
    var grownWidth = width + left + right, grownHeight = height + up + down;
    var scale = LONG_SIDE / Math.max(grownWidth, grownHeight);
    canvas.width = Math.round(grownWidth * scale);
    canvas.height = Math.round(grownHeight * scale);
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "#9aa0ad";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "rgba(255, 255, 255, 0.35)";
    for (var x = -canvas.height; x < canvas.width; x += 12) {
      ctx.beginPath();
      ctx.moveTo(x, 0);
      ctx.lineTo(x + canvas.height, canvas.height);
      ctx.stroke();
    }
    if (source.complete) ctx.drawImage(source, left * scale, up * scale, width * scale, height * scale);
    source.hidden = true;
    canvas.hidden = false;
    label.textContent = grownWidth + " × " + grownHeight + (grownWidth === width && grownHeight === height
      ? " (give a side some pixels to grow)" : " after growing " + [left && "left " + left, right && "right " + right,
        up && "up " + up, down && "down " + down].filter(Boolean).join(", ") + " px");
  }

  document.addEventListener("input", function (event) {
    if (event.target.closest && event.target.closest("#outpaint-pad")) draw();
  });
  document.addEventListener("htmx:afterSwap", draw); // the pad came back from a refused submit
  if (source.complete) draw();
  else source.addEventListener("load", draw);
})();
