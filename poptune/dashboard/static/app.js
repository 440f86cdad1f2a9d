/* poptune dashboard front end: polls the JSON API once a second and redraws what changed.
 * Plain DOM + PTChart (chart.js); every text from the server goes through textContent. */
(function () {
  "use strict";
  var POLL_MS = 1000;
  var TOKEN = new URLSearchParams(location.search).get("token");
  var HIDDEN_PARAMS = {};
  var S = {exp: null, metric: null, x: "training_iteration", selected: null, series: {},
           exploits: [], exploitsNext: 0, sort: {key: "metric", dir: -1}, trials: [],
           scheduleTrial: null, scheduleKey: "", selectedExploit: null, tree: null,
           metrics: [], mode: null, trialsVersion: null, errorOpen: {}, treeSeq: 0, treeKey: ""};
  /* The last answer per API path: {url, etag, data}. A poll sends its ETag as If-None-Match
   * (fetch with cache "no-store" neither stores answers nor revalidates by itself) and a
   * 304 Not Modified reuses the data; one entry per path, so `since` queries do not pile up. */
  var ANSWERS = {};

  function $(id) { return document.getElementById(id); }
  function h(tag, attrs, children) {
    var n = document.createElement(tag);
    for (var k in (attrs || {})) {
      if (k === "text") n.textContent = attrs[k];
      else if (k === "on") for (var ev in attrs.on) n.addEventListener(ev, attrs.on[ev]);
      else if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) n.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) n.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return n;
  }
  function fill(node, children) { node.textContent = ""; children.forEach(function (c) { node.appendChild(c); }); }
  function fmt(v) {
    if (typeof v === "number") return PTChart.fmt(v);
    if (v === null || v === undefined) return "–";
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  }
  function ago(ts) {
    if (!ts) return "–";
    var s = Date.now() / 1000 - ts;
    if (s < 60) return Math.max(0, Math.round(s)) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  function when(ts) { return ts ? new Date(ts * 1000).toLocaleString() : "–"; }
  function api(path, params) {
    var q = new URLSearchParams();
    for (var k in (params || {})) if (params[k] !== null && params[k] !== undefined && params[k] !== "") q.set(k, params[k]);
    var headers = TOKEN ? {"X-Poptune-Token": TOKEN} : {};
    var qs = q.toString(), url = path + (qs ? "?" + qs : ""), known = ANSWERS[path];
    if (known && known.url === url) headers["If-None-Match"] = known.etag;
    return fetch(url, {headers: headers, cache: "no-store"}).then(function (r) {
      if (r.status === 304 && known && known.url === url) return known.data;
      if (!r.ok) return r.json().catch(function () { return {}; }).then(function (b) { throw new Error(b.error || ("HTTP " + r.status)); });
      return r.json().then(function (data) {
        var etag = r.headers.get("ETag");
        if (etag) ANSWERS[path] = {url: url, etag: etag, data: data}; else delete ANSWERS[path];
        return data;
      });
    });
  }
  function expPath(suffix) { return "api/experiments/" + encodeURIComponent(S.exp) + (suffix || ""); }
  function colorOf(id) {
    var i = S.trials.findIndex(function (t) { return t.id === id; });
    return PTChart.PALETTE[(i < 0 ? 0 : i) % PTChart.PALETTE.length];
  }
  function badge(status) { return h("span", {"class": "badge " + String(status).toLowerCase(), text: status}); }

  /* ---------------------------------------------------------------- experiment list */
  function renderList(data) {
    var rows = data.experiments.map(function (e) {
      var counts = Object.keys(e.counts).map(function (k) { return e.counts[k] + " " + k.toLowerCase(); }).join(", ");
      var best = e.best ? fmt(e.best.value) + " (" + e.metric + ", " + e.mode + ")" : "–";
      return h("tr", {"data-experiment": e.name}, [
        h("td", {}, [h("a", {href: "#/exp/" + encodeURIComponent(e.name), text: e.name})]),
        h("td", {}, [badge(e.status)]),
        h("td", {text: e.num_trials + (counts ? " — " + counts : "")}),
        h("td", {text: e.num_results}), h("td", {text: e.num_exploits}), h("td", {text: best}),
        h("td", {text: when(e.start)}), h("td", {text: ago(e.modified)})]);
    });
    fill(document.querySelector("#experiments tbody"), rows);
    $("no-experiments").hidden = rows.length > 0;
  }

  /* ---------------------------------------------------------------- trial table */
  function paramKeys() {
    var keys = {};
    S.trials.forEach(function (t) { Object.keys(t.config || {}).forEach(function (k) { keys[k] = true; }); });
    return Object.keys(keys).filter(function (k) { return !HIDDEN_PARAMS[k]; });
  }
  function sortValue(t, key) {
    if (key === "metric") return t.metric;
    if (key.indexOf("config.") === 0) return (t.config || {})[key.slice(7)];
    return t[key];
  }
  function sortedTrials() {
    var k = S.sort.key, d = S.sort.dir;
    return S.trials.slice().sort(function (a, b) {
      var x = sortValue(a, k), y = sortValue(b, k);
      if (x === y) return a.id < b.id ? -1 : 1;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * d;
    });
  }
  function renderTrials() {
    var cols = [["name", "trial"], ["status", "status"], ["iteration", "iter"],
                ["metric", S.metric ? S.metric + (S.mode ? " (" + S.mode + ")" : "") : "metric"]];
    paramKeys().forEach(function (k) { cols.push(["config." + k, k]); });
    cols.push(["num_exploits", "exploits"], ["error", "error"]);
    var head = h("tr", {}, [h("th", {"class": "check"}, [])].concat(cols.map(function (c) {
      var arrow = S.sort.key === c[0] ? (S.sort.dir > 0 ? " ▲" : " ▼") : "";
      return h("th", {"data-key": c[0], "class": "sortable", text: c[1] + arrow, on: {click: function () {
        S.sort = {key: c[0], dir: S.sort.key === c[0] ? -S.sort.dir : (c[0] === "metric" && S.mode === "min" ? 1 : -1)};
        renderTrials();
      }}});
    })));
    fill(document.querySelector("#trials thead"), [head]);
    var body = sortedTrials().map(function (t) {
      var box = h("input", {type: "checkbox", "data-trial": t.id, checked: S.selected[t.id] ? "checked" : null,
                            on: {change: function (ev) { toggle(t.id, ev.target.checked); }}});
      var cells = [h("td", {"class": "check"}, [box, h("span", {"class": "swatch", "data-color": colorOf(t.id)}, [])])];
      cols.forEach(function (c) {
        var v = sortValue(t, c[0]);
        if (c[0] === "status") cells.push(h("td", {}, [badge(v)]));
        else if (c[0] === "error") cells.push(h("td", {"class": "error-cell", text: v || ""}));
        else cells.push(h("td", {text: fmt(v), "class": typeof v === "number" ? "num" : null}));
      });
      var cls = (t.id === S.scheduleTrial ? "current " : "") + (t.status === "ERROR" ? "errored" : "");
      return h("tr", {"data-trial": t.id, "class": cls, on: {click: function (ev) {
        if (ev.target.tagName !== "INPUT") selectScheduleTrial(t.id);
      }}}, cells);
    });
    fill(document.querySelector("#trials tbody"), body);
    document.querySelectorAll("#trials .swatch").forEach(function (s) { s.style.background = s.getAttribute("data-color"); });
  }
  function toggle(id, on) {
    if (on) S.selected[id] = true; else delete S.selected[id];
    renderCurves();
    pollSeries();
  }
  function selectTop(n) {
    S.selected = {};
    sortedByMetric().slice(0, n).forEach(function (t) { S.selected[t.id] = true; });
  }
  function sortedByMetric() {
    var dir = S.mode === "min" ? 1 : -1;
    return S.trials.slice().sort(function (a, b) {
      if (a.metric === null) return 1;
      if (b.metric === null) return -1;
      return (a.metric - b.metric) * dir;
    });
  }

  /* ---------------------------------------------------------------- learning curves */
  function setOptions(select, values, current) {
    var have = Array.prototype.map.call(select.options, function (o) { return o.value; }).join("\n");
    if (have !== values.join("\n")) fill(select, values.map(function (v) { return h("option", {value: v, text: v}); }));
    select.value = current;
  }
  function renderCurves() {
    var ids = Object.keys(S.selected);
    var series = ids.filter(function (id) { return S.series[id]; }).map(function (id) {
      return {id: id, name: id, color: colorOf(id), points: S.series[id].points, breaks: S.series[id].breaks};
    });
    PTChart.lines($("curves"), series, {xLabel: S.x, yLabel: S.metric, empty: "tick trials in the table"});
    fill($("legend"), series.map(function (s) {
      var sw = h("span", {"class": "swatch"}, []);
      sw.style.background = s.color;
      return h("span", {"class": "legend-item", "data-trial": s.id}, [sw, s.name]);
    }));
  }
  function pollSeries() {
    var ids = Object.keys(S.selected);
    if (!ids.length || !S.metric) return Promise.resolve(renderCurves());
    var since = ids.filter(function (id) { return S.series[id]; }).map(function (id) {
      return id + ":" + S.series[id].epoch + ":" + S.series[id].next;
    }).join(",");
    var key = S.metric + "|" + S.x;
    return api(expPath("/series"), {trials: ids.join(","), metric: S.metric, x: S.x, since: since}).then(function (d) {
      if (key !== S.metric + "|" + S.x) return;
      var changed = false;
      Object.keys(d.series).forEach(function (id) {
        var s = d.series[id], old = S.series[id];
        var breaks = {};
        s.breaks.forEach(function (b) { breaks[b] = true; });
        if (!old || s.from === 0 || old.epoch !== s.epoch) {
          S.series[id] = {epoch: s.epoch, next: s.next, points: s.points, breaks: breaks}; changed = true;
        } else if (s.points.length) {
          old.points = old.points.concat(s.points); old.next = s.next; changed = true;
          for (var b in breaks) old.breaks[b] = true;
        }
      });
      if (changed) renderCurves();
    });
  }

  /* ---------------------------------------------------------------- family tree + exploits */
  function renderTree(fromPoll) {
    if (!S.tree) return;
    var key = S.treeSeq + "|" + S.selectedExploit + "|" + S.scheduleTrial + "|" + S.exploits.length +
              "|" + $("tree").clientWidth;
    if (fromPoll && key === S.treeKey) return;  // unchanged: keep the DOM (and hover/focus) as is
    S.treeKey = key;
    var lanes = S.tree.trials.map(function (t) { return {id: t.id, label: t.id, status: t.status, first: t.first, iteration: t.iteration}; });
    PTChart.tree($("tree"), lanes, S.tree.exploits, {
      selectedEdge: S.selectedExploit, selectedLane: S.scheduleTrial, lineage: S.tree.best_lineage,
      onEdge: showExploit, onLane: selectScheduleTrial});
    var latest = S.exploits.slice(-12).reverse();
    fill($("exploit-list"), latest.map(function (e) {
      return h("li", {"class": "exploit-item" + (e.id === S.selectedExploit ? " selected" : ""), "data-exploit": e.id,
                      value: e.id + 1, on: {click: function () { showExploit(e.id); }}},
               [e.target + " ← " + e.donor + " @ " + fmt(e.donor_iter) + (e.changed.length ? " (" + e.changed.join(", ") + ")" : "")]);
    }));
  }
  function showExploit(id) {
    S.selectedExploit = id;
    var e = S.exploits[id];
    if (!e) return;
    var keys = {};
    [e.old_config, e.donor_config, e.new_config].forEach(function (c) { Object.keys(c || {}).forEach(function (k) { keys[k] = true; }); });
    var rows = Object.keys(keys).sort().map(function (k) {
      var o = (e.old_config || {})[k], n = (e.new_config || {})[k];
      return h("tr", {"class": e.changed.indexOf(k) >= 0 ? "changed" : null, "data-key": k},
               [h("th", {text: k}), h("td", {"class": "old", text: fmt(o)}), h("td", {text: fmt((e.donor_config || {})[k])}),
                h("td", {"class": "new", text: fmt(n)})]);
    });
    fill($("exploit-panel"), [
      h("h4", {text: "Exploit #" + e.id + ": " + e.target + " cloned " + e.donor}),
      h("p", {"class": "muted small", text: e.target + " stopped at iteration " + fmt(e.target_iter) + " and restarted from " +
              e.donor + "'s checkpoint at iteration " + fmt(e.donor_iter) + " with an explored config."}),
      e.new_config ? h("table", {"class": "data config-diff"}, [
        h("thead", {}, [h("tr", {}, [h("th", {text: "hyperparameter"}), h("th", {text: "old (" + e.target + ")"}),
                                     h("th", {text: "donor (" + e.donor + ")"}), h("th", {text: "new"})])]),
        h("tbody", {}, rows)]) : h("p", {"class": "muted", text: "This exploit's configs were not logged (pbt_global.txt)."})]);
    renderTree();
  }
  function pollExploits() {
    return api(expPath("/exploits"), {since: S.exploitsNext}).then(function (d) {
      if (d.next < S.exploitsNext) { S.exploits = []; S.exploitsNext = 0; return; }
      d.exploits.forEach(function (e) { S.exploits[e.id] = e; });
      S.exploitsNext = d.next;
    });
  }

  /* ---------------------------------------------------------------- schedule + errors */
  function selectScheduleTrial(id) {
    S.scheduleTrial = id; S.scheduleKey = "";
    renderTrials(); renderTree(); pollSchedule();
  }
  function pollSchedule() {
    if (!S.scheduleTrial) return Promise.resolve();
    var t = S.trials.find(function (x) { return x.id === S.scheduleTrial; });
    var key = S.scheduleTrial + "|" + (t ? t.iteration + "|" + t.num_exploits : "");
    if (key === S.scheduleKey) return Promise.resolve();
    return api(expPath("/trials/" + encodeURIComponent(S.scheduleTrial) + "/schedule")).then(function (d) {
      S.scheduleKey = key;
      $("schedule-trial").textContent = "— " + d.trial;
      var keys = {};
      d.lineage.forEach(function (s) { Object.keys(s.config || {}).forEach(function (k) { keys[k] = true; }); });
      var numeric = Object.keys(keys).filter(function (k) {
        var vals = d.lineage.map(function (s) { return (s.config || {})[k]; });
        return vals.every(function (v) { return typeof v === "number"; }) &&
               vals.some(function (v) { return v !== vals[0]; });
      });
      fill($("schedule-charts"), numeric.map(function (k) {
        var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
        svg.setAttribute("class", "chart small-chart"); svg.setAttribute("data-key", k);
        return svg;
      }));
      numeric.forEach(function (k, i) {
        var pts = [];
        d.lineage.forEach(function (s) { pts.push([s.from, s.config[k]]); pts.push([s.to, s.config[k]]); });
        PTChart.steps(document.querySelector('#schedule-charts svg[data-key="' + CSS.escape(k) + '"]'),
                      [{id: k, name: k, color: PTChart.PALETTE[i % 10], points: pts}], {height: 150, yLabel: k, xLabel: "training_iteration"});
      });
      var cols = Object.keys(keys).sort();
      fill($("schedule-table"), [h("thead", {}, [h("tr", {}, [h("th", {text: "iterations"}), h("th", {text: "trained by"})]
          .concat(cols.map(function (k) { return h("th", {text: k}); })))]),
        h("tbody", {}, d.lineage.map(function (s) {
          return h("tr", {}, [h("td", {text: fmt(s.from) + "–" + fmt(s.to)}), h("td", {text: s.trial})]
            .concat(cols.map(function (k) { return h("td", {"class": "num", text: fmt((s.config || {})[k])}); })));
        }))]);
    });
  }
  function renderErrors() {
    var failed = S.trials.filter(function (t) { return t.error; });
    if (!failed.length) { fill($("errors"), [h("p", {"class": "muted", text: "No failed trials."})]); return; }
    fill($("errors"), failed.map(function (t) {
      var pre = h("pre", {"class": "traceback", "data-trial": t.id, hidden: S.errorOpen[t.id] ? null : "hidden"}, []);
      var btn = h("button", {type: "button", text: "traceback", on: {click: function () {
        S.errorOpen[t.id] = !S.errorOpen[t.id];
        if (!S.errorOpen[t.id]) { pre.hidden = true; return; }
        api(expPath("/trials/" + encodeURIComponent(t.id) + "/error")).then(function (d) { pre.textContent = d.text || d.error || ""; pre.hidden = false; });
      }}});
      return h("div", {"class": "error-item", "data-trial": t.id}, [
        h("div", {}, [badge(t.status), " ", h("strong", {text: t.id}), " ", h("code", {text: t.error}),
                      t.failures ? " (" + t.failures + " failures) " : " ", btn]), pre]);
    }));
    failed.forEach(function (t) {
      if (S.errorOpen[t.id]) api(expPath("/trials/" + encodeURIComponent(t.id) + "/error")).then(function (d) {
        var pre = document.querySelector('pre.traceback[data-trial="' + CSS.escape(t.id) + '"]');
        if (pre) { pre.textContent = d.text || ""; pre.hidden = false; }
      });
    });
  }

  /* ---------------------------------------------------------------- experiment view */
  function pollExperiment() {
    /* only the trials that changed since the version we have (all of them after a metric
     * change or a restart); `last=0`: the table does not show each trial's last result */
    var asked = S.metric;
    return api(expPath("/trials"), {metric: S.metric, last: 0, since: S.trialsVersion}).then(function (d) {
      if (asked !== S.metric) return;  // the metric changed meanwhile: the next poll asks again
      var first = S.selected === null;
      S.metrics = d.metrics; S.mode = d.mode;
      if (!S.metric) S.metric = d.metric || d.metrics[0] || null;
      var changed = d.version !== S.trialsVersion;
      if (changed) {
        if (d.full) S.trials = d.trials.slice();
        else {
          var at = {};
          S.trials.forEach(function (t, i) { at[t.id] = i; });
          S.trials = S.trials.slice();
          d.trials.forEach(function (t) { if (t.id in at) S.trials[at[t.id]] = t; else S.trials.push(t); });
        }
        // rows for another metric than the one shown (the first poll, metric unknown yet):
        // ask for all of them again next time
        S.trialsVersion = d.metric === S.metric ? d.version : null;
      }
      if (first) { selectTop(8); S.sort = {key: "metric", dir: S.mode === "min" ? 1 : -1}; }
      if (!S.scheduleTrial && S.trials.length) S.scheduleTrial = (d.best && d.best.trial) || S.trials[0].id;
      setOptions($("metric-select"), d.metrics, S.metric);
      var xs = ["training_iteration", "time_total_s"].concat(d.metrics.filter(function (m) { return m !== "training_iteration" && m !== "time_total_s"; }));
      setOptions($("x-select"), xs, S.x);
      var counts = {};
      S.trials.forEach(function (t) { counts[t.status] = (counts[t.status] || 0) + 1; });
      fill($("exp-summary"), [h("h2", {text: S.exp}), badge(d.status),
        h("span", {"class": "muted", text: " " + S.trials.length + " trials · " + Object.keys(counts).map(function (k) { return counts[k] + " " + k.toLowerCase(); }).join(", ") +
          (d.best ? " · best " + d.metric + " = " + fmt(d.best.value) + " (" + d.best.trial + ")" : "")})]);
      if (changed) { renderTrials(); renderErrors(); }
      return Promise.all([pollSeries(), pollExploits().then(function () {
        return api(expPath("/tree"), {metric: S.metric}).then(function (t) {
          if (t !== S.tree) S.treeSeq += 1;  // a 304 gives back the same object
          S.tree = t; renderTree(true);
        });
      }), pollSchedule()]);
    });
  }
  function openExperiment(name) {
    S.exp = name; S.metric = null; S.selected = null; S.series = {}; S.exploits = []; S.exploitsNext = 0;
    S.scheduleTrial = null; S.scheduleKey = ""; S.selectedExploit = null; S.tree = null; S.trialsVersion = null;
    S.trials = []; S.treeSeq = 0; S.treeKey = "";
    fill($("exploit-panel"), [h("p", {"class": "muted", text: "Click an exploit to see the old → new config."})]);
    $("crumb").textContent = "/ " + name;
  }

  /* ---------------------------------------------------------------- routing + polling */
  function route() {
    var m = location.hash.match(/^#\/exp\/(.+)$/);
    var name = m ? decodeURIComponent(m[1]) : null;
    $("list-view").hidden = !!name; $("exp-view").hidden = !name;
    if (name && name !== S.exp) openExperiment(name);
    if (!name) { S.exp = null; $("crumb").textContent = ""; }
    tick(true);
  }
  var timer = null, busy = false;
  function tick(now) {
    if (timer) clearTimeout(timer);
    if (busy && !now) { timer = setTimeout(tick, POLL_MS); return; }
    busy = true;
    var p = S.exp ? pollExperiment() : api("api/experiments").then(renderList);
    p.then(function () {
      $("live").textContent = "live"; $("live").className = "live ok";
      document.body.setAttribute("data-updated", String(Date.now()));
    }).catch(function (err) {
      $("live").textContent = "offline: " + err.message; $("live").className = "live bad";
    }).then(function () {
      busy = false;
      if (timer) clearTimeout(timer);
      timer = setTimeout(tick, POLL_MS);
    });
  }
  $("metric-select").addEventListener("change", function (ev) { S.metric = ev.target.value; S.series = {}; S.trialsVersion = null; tick(true); });
  $("x-select").addEventListener("change", function (ev) { S.x = ev.target.value; S.series = {}; tick(true); });
  $("select-none").addEventListener("click", function () { S.selected = {}; renderTrials(); renderCurves(); });
  $("select-best").addEventListener("click", function () { selectTop(8); renderTrials(); tick(true); });
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", function () { renderCurves(); renderTree(); S.scheduleKey = ""; });
  route();
})();
