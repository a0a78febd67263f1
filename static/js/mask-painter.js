// The mask painter (templates/prompts/_mask_painter.html): brush and eraser strokes on a canvas at the picture's
// own size, laid over it; undo and clear. After every change the mask is drawn afresh off screen, white where
// painted on black, and put into the form's hidden file field as mask.png, so the form sends it like any file.
(function () {
  "use strict";
  var root = document.getElementById("mask-painter");
  if (!root) return;
  var canvas = document.getElementById("mask-canvas");
  var sizeInput = document.getElementById("mask-size");
  var fileInput = document.getElementById("mask-file");
  var context = canvas.getContext("2d");
  var strokes = []; // {erase, size, points: [[x, y], ...]} in the picture's pixels
  var current = null;
  var erasing = false;
  var SHOWN = "rgba(255, 40, 90, 0.55)";

  function at(event) {
    var box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  }

  function trace(ctx, stroke, colour) {
    ctx.globalCompositeOperation = stroke.erase && colour === SHOWN ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = stroke.erase && colour !== SHOWN ? "#000" : colour;
    ctx.lineWidth = stroke.size;
    ctx.lineCap = ctx.lineJoin = "round";
    var points = stroke.points;
    if (points.length === 1) {
      ctx.beginPath();
      ctx.arc(points[0][0], points[0][1], stroke.size / 2, 0, 2 * Math.PI);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    ctx.moveTo(points[0][0], points[0][1]);
    for (var i = 1; i < points.length; i++) ctx.lineTo(points[i][0], points[i][1]);
    ctx.stroke();
  }

  function redraw() {
    context.globalCompositeOperation = "source-over";
    context.clearRect(0, 0, canvas.width, canvas.height);
    strokes.forEach(function (stroke) { trace(context, stroke, SHOWN); });
    if (current) trace(context, current, SHOWN);
  }

  // The PNG the API takes: black where kept, white where changed, the picture's size.
  function exportMask() {
    var transfer = new DataTransfer();
    if (strokes.length) {
      var mask = document.createElement("canvas");
      mask.width = canvas.width;
      mask.height = canvas.height;
      var ctx = mask.getContext("2d");
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, mask.width, mask.height);
      strokes.forEach(function (stroke) { trace(ctx, stroke, "#fff"); });
      var binary = atob(mask.toDataURL("image/png").split(",")[1]);
      var bytes = new Uint8Array(binary.length);
      for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      transfer.items.add(new File([bytes], "mask.png", { type: "image/png" }));
    }
    fileInput.files = transfer.files; // none painted: no file, and the server says to paint first
    root.dataset.strokes = String(strokes.length);
    var refusal = document.querySelector("#edit-error[data-field='mask']");
    if (refusal && strokes.length) refusal.hidden = true; // painted again: the refusal no longer holds
  }

  canvas.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) return;
    canvas.setPointerCapture(event.pointerId);
    current = { erase: erasing, size: Number(sizeInput.value), points: [at(event)] };
    redraw();
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", function (event) {
    if (!current) return;
    current.points.push(at(event));
    redraw();
  });
  function finish() {
    if (!current) return;
    strokes.push(current);
    current = null;
    redraw();
    exportMask();
  }
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);

  root.addEventListener("click", function (event) {
    var tool = event.target.closest("[data-mask-tool]");
    var action = event.target.closest("[data-mask-action]");
    if (tool) {
      erasing = tool.dataset.maskTool === "eraser";
      root.querySelectorAll("[data-mask-tool]").forEach(function (button) {
        button.setAttribute("aria-pressed", String(button === tool));
      });
      canvas.classList.toggle("erasing", erasing);
    } else if (action) {
      if (action.dataset.maskAction === "undo") strokes.pop();
      else strokes = [];
      redraw();
      exportMask();
    }
  });
  exportMask();
})();
