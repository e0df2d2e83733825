// Plan page: scroll dose slices (slider, wheel, arrow keys) and read the DVH at the pointer.
// Plain JavaScript, no library, no network other than this server's slice images.
(function () {
  "use strict";
  var viewer = document.querySelector(".viewer");
  if (viewer) {
    var planId = viewer.getAttribute("data-plan");
    var img = document.getElementById("slice-image");
    var slider = document.getElementById("slice-slider");
    var label = document.getElementById("slice-position");
    var buttons = viewer.querySelectorAll("button.axis");
    var orientations = JSON.parse(document.getElementById("orientations").textContent);
    var current = buttons[0];
    var pending = null;

    function show() {
      var axis = current.getAttribute("data-axis");
      var index = parseInt(slider.value, 10);
      current.setAttribute("data-index", String(index));
      var mm = parseFloat(current.getAttribute("data-origin")) + index * parseFloat(current.getAttribute("data-spacing"));
      label.textContent = current.getAttribute("data-coord") + " = " + mm.toFixed(1) + " mm";
      var src = "/plans/" + planId + "/slices/" + axis + "/" + index + ".png";
      // Keep scrolling smooth: only the latest request replaces the picture.
      pending = src;
      var next = new Image();
      next.onload = function () { if (pending === src) { img.src = src; img.alt = axis + " dose slice " + index; } };
      next.src = src;
    }

    function selectAxis(button) {
      current = button;
      buttons.forEach(function (b) {
        var on = b === button;
        b.classList.toggle("active", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
      slider.max = String(parseInt(button.getAttribute("data-count"), 10) - 1);
      slider.value = button.getAttribute("data-index");
      var o = orientations[button.getAttribute("data-axis")];
      ["o-top", "o-left", "o-right", "o-bottom"].forEach(function (id, i) {
        document.getElementById(id).textContent = o[i];
      });
      show();
    }

    function step(delta) {
      var v = Math.min(parseInt(slider.max, 10), Math.max(0, parseInt(slider.value, 10) + delta));
      if (String(v) !== slider.value) { slider.value = String(v); show(); }
    }

    buttons.forEach(function (b) { b.addEventListener("click", function () { selectAxis(b); }); });
    slider.addEventListener("input", show);
    img.addEventListener("wheel", function (e) { e.preventDefault(); step(e.deltaY > 0 ? 1 : -1); }, { passive: false });
    img.setAttribute("tabindex", "0");
    img.addEventListener("keydown", function (e) {
      if (e.key === "ArrowUp" || e.key === "ArrowRight") { e.preventDefault(); step(1); }
      if (e.key === "ArrowDown" || e.key === "ArrowLeft") { e.preventDefault(); step(-1); }
    });
  }

  var svg = document.querySelector("svg.dvh");
  var data = document.getElementById("dvh-data");
  if (svg && data) {
    var curves = JSON.parse(data.textContent);
    var readout = document.getElementById("dvh-readout");
    var cursor = svg.querySelector(".dvh-cursor");
    var left = parseFloat(svg.getAttribute("data-left"));
    var right = parseFloat(svg.getAttribute("data-right"));
    var maxDose = parseFloat(svg.getAttribute("data-max-dose"));
    var hidden = {};

    function volumeAt(curve, dose) {
      var d = curve.dose_gy, v = curve.volume_pct;
      if (dose <= d[0]) { return v[0]; }
      for (var i = 1; i < d.length; i++) {
        if (d[i] >= dose) {
          var t = (dose - d[i - 1]) / (d[i] - d[i - 1]);
          return v[i - 1] + t * (v[i] - v[i - 1]);
        }
      }
      return v[v.length - 1];
    }

    svg.addEventListener("mousemove", function (e) {
      var box = svg.getBoundingClientRect();
      var x = (e.clientX - box.left) * (svg.viewBox.baseVal.width / box.width);
      if (x < left || x > right) { cursor.setAttribute("visibility", "hidden"); return; }
      cursor.setAttribute("x1", x); cursor.setAttribute("x2", x);
      cursor.setAttribute("visibility", "visible");
      var dose = (x - left) / (right - left) * maxDose;
      var parts = [dose.toFixed(2) + " Gy:"];
      Object.keys(curves).forEach(function (name) {
        if (!hidden[name]) { parts.push(name + " " + volumeAt(curves[name], dose).toFixed(1) + " %"); }
      });
      readout.textContent = parts.join("  ");
    });
    svg.addEventListener("mouseleave", function () { cursor.setAttribute("visibility", "hidden"); });
    document.querySelectorAll(".dvh-legend input[type=checkbox]").forEach(function (box) {
      box.addEventListener("change", function () {
        var name = box.getAttribute("data-structure");
        hidden[name] = !box.checked;
        svg.querySelectorAll("polyline").forEach(function (p) {
          if (p.getAttribute("data-structure") === name) { p.style.display = box.checked ? "" : "none"; }
        });
      });
    });
  }
})();
