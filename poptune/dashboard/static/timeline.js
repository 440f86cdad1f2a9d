/* poptune dashboard: the "over wall-clock time" card. Polls /timeline every 3 s for the
 * experiment in the URL (#/exp/NAME) and draws one bar per trial run (coloured by the
 * trial's final metric) and the best metric so far. Texts go through textContent. */
(function () {
  "use strict";
  var POLL_MS = 3000, NS = "http://www.w3.org/2000/svg";
  var TOKEN = new URLSearchParams(location.search).get("token");
  var last = "", etag = "";  // the URL and ETag of the answer drawn

  function el(tag, attrs, parent) {
    var n = document.createElementNS(NS, tag);
    for (var k in attrs) n.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(n);
    return n;
  }
  function color(v, lo, hi, mode) {  // dark blue (best) .. yellow (worst)
    if (typeof v !== "number") return "#bbb";
    var f = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    if (mode === "max") f = 1 - f;
    return "hsl(" + Math.round(240 - 185 * f) + ",70%," + Math.round(35 + 25 * f) + "%)";
  }
  function bars(svg, data) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var trials = data.trials, n = trials.length;
    var w = svg.clientWidth || 640, laneH = Math.max(4, Math.min(18, 360 / Math.max(n, 1)));
    var h = n * laneH + 40, m = {l: 58, r: 12, t: 8, b: 30}, W = w - m.l - m.r;
    svg.setAttribute("viewBox", "0 0 " + w + " " + h); svg.setAttribute("height", h);
    var end = 0, finals = [];
    trials.forEach(function (t) {
      t.runs.forEach(function (r) { end = Math.max(end, r[1]); });
      if (typeof t.final === "number") finals.push(t.final);
    });
    var lo = Math.min.apply(null, finals), hi = Math.max.apply(null, finals);
    var sx = function (v) { return m.l + v / (end || 1) * W; };
    PTChart.ticks(0, end || 1, 6).forEach(function (tk) {
      el("line", {x1: sx(tk), x2: sx(tk), y1: m.t, y2: h - m.b, "class": "grid"}, svg);
      el("text", {x: sx(tk), y: h - m.b + 14, "text-anchor": "middle"}, svg).textContent = PTChart.fmt(tk);
    });
    el("text", {x: m.l + W / 2, y: h - 3, "text-anchor": "middle", "class": "label"}, svg).textContent = "wall-clock time (s)";
    trials.forEach(function (t, i) {
      t.runs.forEach(function (r) {
        var rect = el("rect", {"class": "run", "data-trial": t.trial_id,
                               x: sx(r[0]), y: m.t + i * laneH + 1, height: Math.max(laneH - 2, 2),
                               width: Math.max(sx(r[1]) - sx(r[0]), 1.5),
                               fill: color(t.final, lo, hi, data.mode)}, svg);
        el("title", {}, rect).textContent = t.label + ": " + PTChart.fmt(r[0]) + "–" + PTChart.fmt(r[1]) +
          " s, final " + (data.metric || "") + " " + PTChart.fmt(t.final);
      });
    });
  }
  function draw(data) {
    var card = document.getElementById("timeline-card");
    if (!card) return;
    bars(document.getElementById("timeline-bars"), data);
    var best = data.best.slice(), end = 0;
    data.trials.forEach(function (t) { t.runs.forEach(function (r) { end = Math.max(end, r[1]); }); });
    if (best.length) best.push([end, best[best.length - 1][1]]);
    PTChart.steps(document.getElementById("timeline-best"),  // the bars' time axis: 0 .. end
                  best.length ? [{id: "best", name: "best so far", points: best}] : [],
                  {xLabel: "wall-clock time (s)", yLabel: "best " + (data.metric || ""), height: 220,
                   xDomain: [0, end || 1], empty: "no metric with a mode to follow"});
  }
  function tick() {
    var m = location.hash.match(/^#\/exp\/(.+)$/);
    if (!m || document.hidden) { setTimeout(tick, POLL_MS); return; }
    var headers = TOKEN ? {"X-Poptune-Token": TOKEN} : {};
    // points=0: the card draws runs and the best so far, not every trial's points
    var url = "api/experiments/" + encodeURIComponent(decodeURIComponent(m[1])) + "/timeline?points=0";
    if (url === last && etag) headers["If-None-Match"] = etag;  // unchanged: 304, no body
    fetch(url, {headers: headers, cache: "no-store"})
      .then(function (r) {
        if (!r.ok) return null;  // 304 (nothing new) or an error
        var tag = r.headers.get("ETag") || "";
        return r.json().then(function (data) { last = url; etag = tag; draw(data); });
      })
      .catch(function () {})
      .then(function () { setTimeout(tick, POLL_MS); });
  }
  window.addEventListener("hashchange", function () { last = ""; etag = ""; });
  setTimeout(tick, 300);
})();
