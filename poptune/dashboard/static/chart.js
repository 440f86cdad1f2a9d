/* PTChart: a tiny dependency-free SVG chart kit for the poptune dashboard.
 * lines(svg, series, opts)   learning curves: series = [{id, name, color, points: [[x, y]],
 *                            breaks: {index: true} (start a new stroke there)}]
 * steps(svg, series, opts)   step functions (hyperparameter schedules), same shape
 * tree(svg, lanes, edges, o) PBT family tree: one lane per trial, an arrow per exploit
 * Part of poptune (Apache-2.0). No external code. */
(function (global) {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var STATUS_COLORS = {RUNNING: "#2ca02c", TERMINATED: "#1f77b4", ERROR: "#d62728",
                       PAUSED: "#ff7f0e", PENDING: "#999999"};

  function el(tag, attrs, parent) {
    var node = document.createElementNS(NS, tag);
    for (var k in attrs) { if (attrs[k] !== undefined && attrs[k] !== null) node.setAttribute(k, attrs[k]); }
    if (parent) parent.appendChild(node);
    return node;
  }
  function clear(svg) { while (svg.firstChild) svg.removeChild(svg.firstChild); }
  function fmt(v) {
    if (v === null || v === undefined || typeof v !== "number" || !isFinite(v)) return String(v);
    var a = Math.abs(v);
    if (Number.isInteger(v) && a < 1e15) return String(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }
  function ticks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; lo = lo - 1; }
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    var err = (hi - lo) / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
    return out;
  }
  function extent(series, idx) {
    var lo = Infinity, hi = -Infinity;
    series.forEach(function (s) {
      s.points.forEach(function (p) {
        var v = p[idx];
        if (typeof v === "number" && isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
      });
    });
    if (lo === Infinity) return [0, 1];
    if (lo === hi) return [lo - (Math.abs(lo) || 1) * 0.05, hi + (Math.abs(hi) || 1) * 0.05];
    return [lo, hi];
  }
  function size(svg, opts) {
    var w = opts.width || svg.clientWidth || (svg.parentNode && svg.parentNode.clientWidth) || 640;
    var h = opts.height || 280;
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("width", w); svg.setAttribute("height", h);
    return [w, h];
  }
  function frame(svg, series, opts) {
    var wh = size(svg, opts), m = {l: 58, r: 12, t: 10, b: 34};
    var xe = opts.xDomain || extent(series, 0), ye = opts.yDomain || extent(series, 1);
    var W = wh[0] - m.l - m.r, H = wh[1] - m.t - m.b;
    var sx = function (v) { return m.l + (v - xe[0]) / (xe[1] - xe[0] || 1) * W; };
    var sy = function (v) { return m.t + H - (v - ye[0]) / (ye[1] - ye[0] || 1) * H; };
    var axes = el("g", {"class": "axes"}, svg);
    ticks(ye[0], ye[1], 5).forEach(function (t) {
      if (t < ye[0] || t > ye[1]) return;
      el("line", {x1: m.l, x2: m.l + W, y1: sy(t), y2: sy(t), "class": "grid"}, axes);
      el("text", {x: m.l - 6, y: sy(t) + 4, "text-anchor": "end"}, axes).textContent = fmt(t);
    });
    ticks(xe[0], xe[1], 6).forEach(function (t) {
      if (t < xe[0] || t > xe[1]) return;
      el("line", {x1: sx(t), x2: sx(t), y1: m.t + H, y2: m.t + H + 4, "class": "tick"}, axes);
      el("text", {x: sx(t), y: m.t + H + 16, "text-anchor": "middle"}, axes).textContent = fmt(t);
    });
    el("rect", {x: m.l, y: m.t, width: W, height: H, "class": "plot-frame", fill: "none"}, axes);
    if (opts.xLabel) el("text", {x: m.l + W / 2, y: wh[1] - 3, "text-anchor": "middle", "class": "label"}, axes).textContent = opts.xLabel;
    if (opts.yLabel) el("text", {x: 12, y: m.t + H / 2, "text-anchor": "middle", "class": "label",
                                 transform: "rotate(-90 12 " + (m.t + H / 2) + ")"}, axes).textContent = opts.yLabel;
    return {sx: sx, sy: sy, m: m, W: W, H: H};
  }
  function pathData(points, f, stepped, breaks) {
    var d = "", pen = false;
    points.forEach(function (p, i) {
      if (breaks && breaks[i]) pen = false;
      var ok = typeof p[0] === "number" && typeof p[1] === "number" && isFinite(p[0]) && isFinite(p[1]);
      if (!ok) { pen = false; return; }
      var x = f.sx(p[0]).toFixed(1), y = f.sy(p[1]).toFixed(1);
      if (!pen) d += "M" + x + " " + y;
      else if (stepped) d += "H" + x + "V" + y;
      else d += "L" + x + " " + y;
      pen = true;
    });
    return d;
  }
  function draw(svg, series, opts, stepped) {
    clear(svg);
    opts = opts || {};
    var f = frame(svg, series, opts);
    var g = el("g", {"class": "series"}, svg);
    series.forEach(function (s, i) {
      var color = s.color || PALETTE[i % PALETTE.length];
      var p = el("path", {d: pathData(s.points, f, stepped, s.breaks), stroke: color, fill: "none",
                          "stroke-width": s.width || 1.6, "class": "series", "data-trial": s.id}, g);
      var title = el("title", {}, p); title.textContent = s.name || s.id || "";
    });
    if (!series.length && opts.empty) {
      el("text", {x: f.m.l + f.W / 2, y: f.m.t + f.H / 2, "text-anchor": "middle", "class": "empty"}, svg).textContent = opts.empty;
    }
    return f;
  }
  function lines(svg, series, opts) { return draw(svg, series, opts, false); }
  function steps(svg, series, opts) { return draw(svg, series, opts, true); }

  /* lanes: [{id, label, status, first, iteration}], edges: [{id, donor, target, donor_iter}]
   * opts: {onEdge(id), onLane(id), selectedEdge, selectedLane, lineage: [{trial, from, to, exploit}]} */
  function tree(svg, lanes, edges, opts) {
    clear(svg);
    opts = opts || {};
    var laneH = Math.max(10, Math.min(26, 420 / Math.max(lanes.length, 1)));
    var height = opts.height || Math.max(120, lanes.length * laneH + 44);
    var wh = size(svg, {width: opts.width, height: height});
    var m = {l: 96, r: 14, t: 10, b: 30}, W = wh[0] - m.l - m.r;
    var maxIt = 1, lastEdge = 0;
    lanes.forEach(function (l) { if (l.iteration > maxIt) maxIt = l.iteration; });
    edges.forEach(function (e) { if (e.donor_iter > lastEdge) lastEdge = e.donor_iter; });
    // a straggler that trains long after the last exploit would squeeze the tree: clip it
    var clipped = edges.length > 0 && maxIt > 1.5 * lastEdge;
    if (clipped) maxIt = Math.ceil(lastEdge * 1.15);
    var sx = function (v) { return m.l + Math.min(v || 0, maxIt) / maxIt * W; };
    var row = {};
    lanes.forEach(function (l, i) { row[l.id] = i; });
    var sy = function (id) { return m.t + (row[id] + 0.5) * laneH; };
    var axes = el("g", {"class": "axes"}, svg);
    ticks(0, maxIt, 6).forEach(function (t) {
      el("line", {x1: sx(t), x2: sx(t), y1: m.t, y2: m.t + lanes.length * laneH, "class": "grid"}, axes);
      el("text", {x: sx(t), y: m.t + lanes.length * laneH + 16, "text-anchor": "middle"}, axes).textContent = fmt(t);
    });
    el("text", {x: m.l + W / 2, y: wh[1] - 2, "text-anchor": "middle", "class": "label"}, axes).textContent = opts.xLabel || "training_iteration";
    var lg = el("g", {"class": "lanes"}, svg);
    lanes.forEach(function (l) {
      var y = sy(l.id), sel = l.id === opts.selectedLane;
      var lab = el("text", {x: m.l - 6, y: y + 4, "text-anchor": "end", "class": "lane-label" + (sel ? " selected" : ""),
                            "data-trial": l.id}, lg);
      lab.textContent = l.label || l.id;
      if (opts.onLane) lab.addEventListener("click", function () { opts.onLane(l.id); });
      el("line", {x1: sx(l.first || 0), x2: sx(l.iteration), y1: y, y2: y, "class": "lane",
                  stroke: STATUS_COLORS[l.status] || "#999", "data-trial": l.id}, lg);
      if (clipped && l.iteration > maxIt) {
        el("text", {x: sx(maxIt) - 2, y: y - 3, "text-anchor": "end", "class": "lane-more"}, lg).textContent = "→ " + fmt(l.iteration);
      }
    });
    var hl = el("g", {"class": "lineage"}, svg);
    var chainEdges = {};
    (opts.lineage || []).forEach(function (s) {
      if (row[s.trial] === undefined) return;
      el("line", {x1: sx(s.from), x2: sx(s.to), y1: sy(s.trial), y2: sy(s.trial), "class": "lineage-seg"}, hl);
      if (s.exploit !== null && s.exploit !== undefined) chainEdges[s.exploit] = true;
    });
    var eg = el("g", {"class": "edges"}, svg);
    edges.forEach(function (e) {
      if (row[e.donor] === undefined || row[e.target] === undefined) return;
      var x = sx(e.donor_iter), y0 = sy(e.donor), y1 = sy(e.target), bend = Math.min(18, Math.abs(y1 - y0) / 3 + 4);
      var cls = "edge" + (chainEdges[e.id] ? " in-lineage" : "") + (e.id === opts.selectedEdge ? " selected" : "");
      el("path", {d: "M" + x + " " + y0 + " C" + (x - bend) + " " + y0 + " " + (x - bend) + " " + y1 + " " + x + " " + y1,
                  "class": cls, fill: "none"}, eg);
      var dot = el("circle", {cx: x, cy: y1, r: e.id === opts.selectedEdge ? 5.5 : 3.5, "class": "exploit " + cls,
                              "data-exploit": e.id, tabindex: 0}, eg);
      var t = el("title", {}, dot);
      t.textContent = "exploit #" + e.id + ": " + e.target + " cloned " + e.donor + " @ " + e.donor_iter;
      if (opts.onEdge) dot.addEventListener("click", function () { opts.onEdge(e.id); });
    });
    return {sx: sx, sy: sy};
  }

  global.PTChart = {lines: lines, steps: steps, tree: tree, fmt: fmt, ticks: ticks,
                    PALETTE: PALETTE, STATUS_COLORS: STATUS_COLORS};
})(window);
