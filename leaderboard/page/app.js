(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("leaderboard-data").textContent);
  var state = {view: "board", metric: D.initial.metric, split: D.initial.split, sort: null, dir: -1,
               cell: null, skill: "", topic: "", outcome: "", catSort: null, catDir: -1, skillSort: null, skillDir: 1};
  var VIEWS = ["board", "skills", "samples"], OUTCOMES = ["full marks", "all skills", "missed skills", "unscored", "not judged"];
  var LOADED = {}, REQUESTED = {};
  var cellIds = Object.keys(D.items || {});
  // per-task item data arrive as data/items_<id>.js scripts (file:// pages cannot fetch() local files)
  window.skillmixItems = function (id, data) { LOADED[id] = data; if (state.view === "samples" && state.cell === id) render(); };
  var splitKeys = Object.keys(D.splits);
  if (splitKeys.indexOf(state.split) < 0 && splitKeys.length) state.split = splitKeys[0];

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var a in (attrs || {})) e.setAttribute(a, attrs[a]);
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function fmt(v, d) { return v === null || v === undefined ? "—" : v.toFixed(d === undefined ? 3 : d); }
  function sgn(v) { return (v >= 0 ? "+" : "") + fmt(v); }
  function rate(t) { return t && t[1] ? t[0] / t[1] : null; }
  function rateText(t) { return t && t[1] ? fmt(t[0] / t[1], 2) + " (" + t[0] + "/" + t[1] + ")" : "—"; }
  function sortableHead(table, cols, key, dir, onSort) {
    var tr = el("tr");
    cols.forEach(function (c) {
      var th = el("th", {id: c.id, "data-col": c.key}, c.title);
      if (c.key === key) th.className = dir > 0 ? "sorted-asc" : "sorted-desc";
      th.addEventListener("click", function () { onSort(c); });
      tr.appendChild(th);
    });
    table.tHead.innerHTML = ""; table.tHead.appendChild(tr);
  }
  function sortRows(list, value, dir) {
    return list.slice().sort(function (a, b) {
      var x = value(a), y = value(b);
      if (x === y) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * dir;
    });
  }

  // --- state from the URL hash: #metric=all_skills&split=train (also a test hook, with &click=id1,id2)
  function readHash() {
    var h = {}, parts = location.hash.replace(/^#/, "").split("&");
    for (var i = 0; i < parts.length; i++) {
      var kv = parts[i].split("=");
      if (kv[0]) h[decodeURIComponent(kv[0])] = decodeURIComponent(kv.slice(1).join("="));
    }
    if (D.metrics.indexOf(h.metric) >= 0) state.metric = h.metric;
    if (splitKeys.indexOf(h.split) >= 0) state.split = h.split;
    if (VIEWS.indexOf(h.view) >= 0) state.view = h.view;
    if (h.cell !== undefined && cellIds.indexOf(h.cell) >= 0) {
      if (h.cell !== state.cell) { state.skill = ""; state.topic = ""; state.outcome = ""; }
      state.cell = h.cell;
    }
    if (h.skill !== undefined) state.skill = h.skill;
    if (h.topic !== undefined) state.topic = h.topic;
    if (h.outcome !== undefined) state.outcome = OUTCOMES.indexOf(h.outcome) >= 0 ? h.outcome : "";
    return h;
  }
  function writeHash() {
    var h = "#view=" + state.view + "&metric=" + state.metric + "&split=" + state.split;
    if (state.view === "samples" && state.cell) {
      h += "&cell=" + encodeURIComponent(state.cell);
      ["skill", "topic", "outcome"].forEach(function (f) { if (state[f]) h += "&" + f + "=" + encodeURIComponent(state[f]); });
    }
    if (location.hash !== h && history.replaceState) history.replaceState(null, "", h);
  }

  function buttons() {
    Array.prototype.forEach.call(document.querySelectorAll("#views button"), function (b) {
      b.addEventListener("click", function () { state.view = b.getAttribute("data-view"); render(); });
    });
    var ms = document.getElementById("metric-switch"), ss = document.getElementById("split-switch");
    D.metrics.forEach(function (m) {
      var b = el("button", {id: "metric-" + m, type: "button", "data-metric": m}, D.metric_labels[m]);
      b.addEventListener("click", function () { state.metric = m; render(); });
      ms.appendChild(b);
    });
    splitKeys.forEach(function (s) {
      var b = el("button", {id: "split-" + s, type: "button", "data-split": s}, D.split_labels[s]);
      b.addEventListener("click", function () { state.split = s; render(); });
      ss.appendChild(b);
    });
  }

  function columns() {
    var ks = D.splits[state.split] || [];
    var cols = [{key: "label", title: "Model", text: true}, {key: "revision", title: "Revision", text: true},
                {key: "protocol", title: "Protocol", text: true}, {key: "judge", title: "Judge", text: true}];
    ks.forEach(function (k) { cols.push({key: "k" + k, k: String(k), title: "k=" + k}); });
    cols.push({key: "mean", title: "Mean over k"});
    cols.push({key: "provenance", title: "Training provenance", text: true});
    return cols;
  }
  function cellOf(r, k) { var s = r.cells[state.split]; return s ? s[k] : undefined; }
  function sortValue(r, col) {
    if (col.text) return (r[col.key] || "").toLowerCase();
    if (col.key === "mean") return meanOf(r);
    var c = cellOf(r, col.k);
    return c && c[state.metric].v !== null ? c[state.metric].v : null;
  }
  function meanOf(r) {
    var ks = D.splits[state.split] || [], sum = 0, n = 0;
    ks.forEach(function (k) { var c = cellOf(r, String(k)); if (c && c[state.metric].v !== null) { sum += c[state.metric].v; n++; } });
    return n ? sum / n : null;
  }

  function render() {
    writeHash();
    VIEWS.forEach(function (v) {
      document.getElementById(v + "-view").hidden = v !== state.view;
      document.getElementById("view-" + v).className = v === state.view ? "active" : "";
    });
    if (state.view === "skills") return renderSkills();
    if (state.view === "samples") return renderSamples();
    var cols = columns();
    if (!state.sort) state.sort = "mean";
    var col = cols.filter(function (c) { return c.key === state.sort; })[0] || cols[cols.length - 2];
    var rows = D.rows.slice().sort(function (a, b) {
      var x = sortValue(a, col), y = sortValue(b, col);
      if (x === y) return a.label < b.label ? -1 : 1;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * state.dir;
    });
    var table = document.getElementById("board");
    table.setAttribute("data-metric", state.metric);
    table.setAttribute("data-split", state.split);
    document.getElementById("board-title").textContent =
      D.metric_labels[state.metric] + " — " + D.split_labels[state.split] + " skills and topics (measured)";
    var thead = table.tHead, tbody = table.tBodies[0];
    thead.innerHTML = ""; tbody.innerHTML = "";
    var tr = el("tr");
    cols.forEach(function (c) {
      var th = el("th", {id: "sort-" + c.key, "data-col": c.key}, c.title);
      if (c.key === col.key) th.className = state.dir > 0 ? "sorted-asc" : "sorted-desc";
      th.addEventListener("click", function () {
        if (state.sort === c.key) state.dir = -state.dir; else { state.sort = c.key; state.dir = c.text ? 1 : -1; }
        render();
      });
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    rows.forEach(function (r) {
      var row = el("tr", {"data-model": r.model, "data-protocol": r.protocol, "data-judge": r.judge,
                          "class": r.baseline ? "baseline" : ""});
      cols.forEach(function (c) {
        var td;
        if (c.key === "label") {
          td = el("td", {title: r.model}, r.label);
          if (r.baseline) { td.appendChild(document.createTextNode(" ")); td.appendChild(el("span", {"class": "tag"}, "baseline")); }
        } else if (c.key === "mean") {
          var m = meanOf(r);
          td = el("td", {"class": "num", "data-value": m === null ? "" : m}, fmt(m));
        } else if (c.text) {
          td = el("td", {"class": c.key === "judge" || c.key === "provenance" ? "small" : ""}, r[c.key] || "—");
          if (c.key === "judge" && r.judge_prompt_version) td.title = "prompt " + r.judge_prompt_version;
        } else {
          var cell = cellOf(r, c.k);
          td = el("td", {"class": "num", "data-k": c.k});
          if (cell) {
            var s = cell[state.metric];
            td.setAttribute("data-value", s.v === null ? "" : s.v);
            td.title = cell.file + (s.lo !== null ? "\n95% CI " + fmt(s.lo) + "–" + fmt(s.hi) : "");
            td.appendChild(el("span", {"class": "v"}, cell.nj ? "not judged" : fmt(s.v)));
            if (s.se !== null && s.v !== null) td.appendChild(document.createTextNode(" ± " + fmt(s.se)));
            var sub = el("div", {"class": "sub"}, "n=" + (cell.n === null ? "?" : cell.n) +
                                 (cell.nj ? ", generated with --predict_only" : ", " + (cell.u === null ? "?" : cell.u) + " unscored"));
            if (cell.flag) {
              td.className += " flagged";
              sub.appendChild(el("span", {"class": "flag", title: "more than 5% of the items unscored: the mean rests on the scored ones only"}, " ⚠"));
            }
            td.appendChild(sub);
            if (s.d !== null) {
              var dt = "Δ " + sgn(s.d) + (s.dlo !== null ? " [" + sgn(s.dlo) + ", " + sgn(s.dhi) + "]" : s.dn ? "" : " (unpaired)") + (s.sig ? " *" : "");
              var dd = el("div", {"class": "sub delta " + (s.d > 0 ? "pos" : s.d < 0 ? "neg" : "") + (s.sig ? " sig" : ""),
                                  "data-sig": s.sig ? "1" : "0"}, dt);
              dd.title = s.dn ? "paired over " + s.dn + " shared items; 95% paired bootstrap interval" +
                (s.sig ? "; excludes 0" : "") : "no samples files: difference of the two means, no interval";
              td.appendChild(dd);
            }
            if (cell.items) {
              var a = el("a", {"class": "items-link", id: "items-" + cell.items,
                               href: "#view=samples&cell=" + encodeURIComponent(cell.items)}, "items ›");
              td.appendChild(a);
            }
          }
        }
        row.appendChild(td);
      });
      tbody.appendChild(row);
    });
    Array.prototype.forEach.call(document.querySelectorAll("#metric-switch button"), function (b) {
      b.className = b.getAttribute("data-metric") === state.metric ? "active" : "";
    });
    Array.prototype.forEach.call(document.querySelectorAll("#split-switch button"), function (b) {
      b.className = b.getAttribute("data-split") === state.split ? "active" : "";
    });
    var plot = document.getElementById("plot");
    plot.innerHTML = "";
    if (D.rows.length) {
      plot.appendChild(el("img", {"class": "plot", id: "plot-img", src: D.plots[state.metric],
                                  alt: D.metric_labels[state.metric] + " against k"}));
    }
    var dplot = document.getElementById("delta-plot");
    dplot.innerHTML = "";
    if (D.plots["delta_" + state.metric]) {
      dplot.appendChild(el("img", {"class": "plot", id: "delta-plot-img", src: D.plots["delta_" + state.metric],
                                   alt: "Δ " + D.metric_labels[state.metric] + " against the baseline"}));
    }
    renderPublished();
  }

  function renderPublished() {
    var pub = D.published.filter(function (p) { return p.metric === state.metric; });
    var t = document.getElementById("published");
    document.getElementById("published-title").textContent =
      "Reference numbers: " + (D.published.length ? D.published[0].label : "published") + " — " + D.metric_labels[state.metric];
    t.tHead.innerHTML = ""; t.tBodies[0].innerHTML = "";
    var tr = el("tr");
    ["Source", "Model", "Variant", "Judge", "Split", "k", "Value"].forEach(function (h) { tr.appendChild(el("th", {}, h)); });
    t.tHead.appendChild(tr);
    pub.forEach(function (p) {
      var r = el("tr", {"class": "published-row"});
      [p.source + " ", p.model, p.variant, p.judge, D.split_labels[p.split] || p.split, String(p.k)].forEach(function (x, i) {
        var td = el("td", {}, x);
        if (i === 0) td.appendChild(el("span", {"class": "tag"}, p.label));
        r.appendChild(td);
      });
      r.appendChild(el("td", {"class": "num"}, fmt(p.value, 2)));
      t.tBodies[0].appendChild(r);
    });
    if (!pub.length) {
      var r = el("tr"); r.appendChild(el("td", {colspan: 7}, "none published for this metric")); t.tBodies[0].appendChild(r);
    }
  }


  // ---------------------------------------------------------------- skills view
  function renderSkills() {
    var S = D.skills;
    document.getElementById("skills-empty").textContent = S ? "" :
      "No samples files beside the results (run lm_eval with --log_samples), so no per-skill numbers.";
    var ct = document.getElementById("cat-table"), st = document.getElementById("skill-table");
    ct.tBodies[0].innerHTML = ""; st.tBodies[0].innerHTML = "";
    document.getElementById("hardest").innerHTML = ""; document.getElementById("heatmaps").innerHTML = "";
    if (!S) { ct.tHead.innerHTML = ""; st.tHead.innerHTML = ""; return; }
    var train = S.categories.filter(function (c) { return S.train_categories.indexOf(c) >= 0; });
    var held = S.categories.filter(function (c) { return S.train_categories.indexOf(c) < 0; });
    var ccols = [{key: "label", id: "sortcat-label", title: "Model", text: true}];
    train.forEach(function (c) { ccols.push({key: c, id: "sortcat-" + c.replace(/ /g, "_"), title: "train: " + c}); });
    if (train.length) ccols.push({key: "train", id: "sortcat-train", title: "all train skills"});
    held.forEach(function (c) { ccols.push({key: c, id: "sortcat-" + c.replace(/ /g, "_"), title: "held-out: " + c}); });
    if (held.length) ccols.push({key: "heldout", id: "sortcat-heldout", title: "all held-out skills"});
    var ckey = state.catSort || (held.length ? "heldout" : "train");
    sortableHead(ct, ccols, ckey, state.catDir, function (c) {
      if (state.catSort === c.key) state.catDir = -state.catDir; else { state.catSort = c.key; state.catDir = c.text ? 1 : -1; }
      renderSkills();
    });
    var idx = D.rows.map(function (_, i) { return i; });
    sortRows(idx, function (i) { return ckey === "label" ? D.rows[i].label.toLowerCase() : rate(S.per_row_category[i][ckey]); },
             state.catDir).forEach(function (i) {
      var tr = el("tr", {"data-model": D.rows[i].model, "data-protocol": D.rows[i].protocol});
      ccols.forEach(function (c) {
        if (c.text) { tr.appendChild(el("td", {title: D.rows[i].model}, D.rows[i].label)); return; }
        var t = S.per_row_category[i][c.key];
        tr.appendChild(el("td", {"class": "num", "data-col": c.key, "data-value": rate(t) === null ? "" : rate(t)}, rateText(t)));
      });
      ct.tBodies[0].appendChild(tr);
    });
    var ul = document.getElementById("hardest");
    D.rows.forEach(function (r, i) {
      if (!S.hardest[i].length) return;
      var li = el("li", {"data-model": r.model, "data-protocol": r.protocol}, r.label + " (" + r.protocol + "): ");
      S.hardest[i].forEach(function (h, j) {
        li.appendChild(el("span", {"class": "skill missed", title: S.category[h[0]]},
                          h[0] + " " + rateText([h[1], h[2]])));
      });
      ul.appendChild(li);
    });
    var hm = document.getElementById("heatmaps");
    ["heatmap_categories", "heatmap_skills"].forEach(function (k) {
      if (D.plots[k]) hm.appendChild(el("img", {"class": "plot", id: k, src: D.plots[k], alt: k.replace("_", " ")}));
    });
    var scols = [{key: "skill", id: "sortskill-skill", title: "Skill", text: true},
                 {key: "category", id: "sortskill-category", title: "Category", text: true}];
    D.rows.forEach(function (r, i) { scols.push({key: "r" + i, id: "sortskill-r" + i, title: r.label, row: i}); });
    var skey = state.skillSort || "category";
    sortableHead(st, scols, skey, state.skillDir, function (c) {
      if (state.skillSort === c.key) state.skillDir = -state.skillDir; else { state.skillSort = c.key; state.skillDir = c.text ? 1 : -1; }
      renderSkills();
    });
    var col = scols.filter(function (c) { return c.key === skey; })[0] || scols[1];
    sortRows(S.skills, function (sk) {
      if (col.key === "skill") return sk.toLowerCase();
      if (col.key === "category") return (S.train_categories.indexOf(S.category[sk]) >= 0 ? "0" : "1") + S.category[sk] + "|" + sk.toLowerCase();
      return rate(S.per_row[col.row][sk]);
    }, state.skillDir).forEach(function (sk) {
      var tr = el("tr", {"data-skill": sk});
      tr.appendChild(el("td", {}, sk));
      tr.appendChild(el("td", {"class": "small"}, (S.train_categories.indexOf(S.category[sk]) >= 0 ? "train: " : "held-out: ") + S.category[sk]));
      D.rows.forEach(function (r, i) {
        var t = S.per_row[i][sk];
        tr.appendChild(el("td", {"class": "num", "data-col": "r" + i, "data-value": rate(t) === null ? "" : rate(t)}, rateText(t)));
      });
      st.tBodies[0].appendChild(tr);
    });
  }

  // ---------------------------------------------------------------- sample browser
  function cellLabel(id) {
    var c = D.items[id], r = D.rows[c.row];
    return r.label + " (" + r.protocol + ") — " + c.task + " — " + c.n + " items";
  }
  function fillSelect(sel, values, current, allLabel) {
    sel.innerHTML = "";
    if (allLabel !== null) sel.appendChild(el("option", {value: ""}, allLabel));
    values.forEach(function (v) {
      var o = el("option", {value: v[0]}, v[1]);
      if (v[0] === current) o.selected = true;
      sel.appendChild(o);
    });
    sel.value = current;
  }
  function renderSamples() {
    var status = document.getElementById("items-status"), list = document.getElementById("items");
    if (!cellIds.length) {
      status.textContent = "No samples files beside the results (run lm_eval with --log_samples).";
      list.innerHTML = ""; return;
    }
    if (!state.cell) state.cell = cellIds[0];
    fillSelect(document.getElementById("sel-cell"), cellIds.map(function (id) { return [id, cellLabel(id)]; }), state.cell, null);
    var data = LOADED[state.cell];
    if (!data) {
      status.textContent = "loading " + D.items[state.cell].file + " …";
      list.innerHTML = "";
      if (!REQUESTED[state.cell]) {
        REQUESTED[state.cell] = true;
        var id = state.cell, sc = el("script", {src: D.items[id].file});
        sc.onerror = function () { status.textContent = "could not load " + D.items[id].file + " (is the data/ folder next to index.html?)"; };
        document.body.appendChild(sc);
      }
      return;
    }
    var skills = {}, topics = {};
    data.items.forEach(function (it) { it.skills.forEach(function (s) { skills[s] = 1; }); topics[it.topic] = 1; });
    fillSelect(document.getElementById("sel-skill"), Object.keys(skills).sort().map(function (s) { return [s, s + " (" + (data.categories[s] || "?") + ")"]; }), state.skill, "every skill");
    fillSelect(document.getElementById("sel-topic"), Object.keys(topics).sort().map(function (t) { return [t, t]; }), state.topic, "every topic");
    fillSelect(document.getElementById("sel-outcome"), OUTCOMES.map(function (o) { return [o, o]; }), state.outcome, "every outcome");
    var shown = data.items.filter(function (it) {
      return (!state.skill || it.skills.indexOf(state.skill) >= 0) && (!state.topic || it.topic === state.topic) &&
             (!state.outcome || it.outcome === state.outcome);
    });
    status.textContent = data.row + " (" + data.protocol + "), " + data.task + "; judge " + data.judge +
      (data.samples ? "; from " + data.samples : "");
    document.getElementById("items-count").textContent = shown.length + " of " + data.items.length + " items";
    list.innerHTML = "";
    shown.forEach(function (it) { list.appendChild(itemCard(it, data)); });
  }
  function itemCard(it, data) {
    var card = el("div", {"class": "item", "data-item-id": it.id, "data-outcome": it.outcome, "data-topic": it.topic});
    var h = el("h3", {}, it.id + " — " + it.topic + " ");
    h.appendChild(el("span", {"class": "outcome o-" + it.outcome.replace(/ /g, "-")}, it.outcome));
    card.appendChild(h);
    var sk = el("div", {"class": "skills"});
    it.skills.forEach(function (s, i) {
      var cls = it.sp ? (it.sp[i] ? " earned" : " missed") : "";
      sk.appendChild(el("span", {"class": "skill" + cls, "data-skill": s, title: (data.categories[s] || "") +
                        (it.sp ? (it.sp[i] ? ": point earned" : ": point missed") : "")}, s));
    });
    card.appendChild(sk);
    if (it.scores) {
      card.appendChild(el("div", {"class": "sub"}, D.metrics.map(function (m) {
        return D.metric_labels[m] + " " + fmt(it.scores[m], 2); }).join(" · ") + " (max over generations)"));
    }
    if (it.reason) card.appendChild(el("div", {"class": "reason"}, "unscored: " + it.reason));
    it.gens.forEach(function (g, gi) {
      var box = el("div", {"class": "gen", "data-gen": gi});
      box.appendChild(el("div", {"class": "sub"}, "generation " + (gi + 1) + " — " + g.status + (g.reason ? ": " + g.reason : "")));
      if (g.draft !== null && g.draft !== undefined) {
        box.appendChild(el("div", {"class": "sub"}, "turn-1 draft"));
        box.appendChild(el("pre", {"class": "text draft"}, g.draft));
        box.appendChild(el("div", {"class": "sub"}, "final answer (turn 2, graded)"));
      } else {
        box.appendChild(el("div", {"class": "sub"}, "final answer (graded)"));
      }
      box.appendChild(el("pre", {"class": "text answer"}, g.text || "(empty)"));
      if (g.criteria.length) {
        var t = el("table", {"class": "rubric"}), tr = el("tr");
        ["Criterion", "Judges' vote"].concat(g.gradings.map(function (_, i) { return "grading " + (i + 1); }), ["Point (after rules)"])
          .forEach(function (x) { tr.appendChild(el("th", {}, x)); });
        t.appendChild(tr);
        g.criteria.forEach(function (c, ci) {
          var row = el("tr");
          row.appendChild(el("td", {}, c));
          row.appendChild(el("td", {"class": "num"}, g.voted ? String(g.voted[ci]) : "—"));
          g.gradings.forEach(function (gr) { row.appendChild(el("td", {"class": "num"}, Array.isArray(gr) && gr[ci] !== null && gr[ci] !== undefined ? String(gr[ci]) : "—")); });
          row.appendChild(el("td", {"class": "num"}, g.points.length ? String(g.points[ci]) : "—"));
          t.appendChild(row);
        });
        box.appendChild(t);
      }
      g.gradings.forEach(function (gr, i) {
        if (!Array.isArray(gr)) box.appendChild(el("div", {"class": "reason"}, "grading " + (i + 1) + " unscored: " + gr.unscored));
      });
      g.replies.forEach(function (rep, i) {
        var d = el("details", {"class": "reply"});
        d.appendChild(el("summary", {}, "grading " + (i + 1) + ": the judge's reply and explanation"));
        d.appendChild(el("pre", {"class": "text"}, rep));
        box.appendChild(d);
      });
      card.appendChild(box);
    });
    return card;
  }
  ["skill", "topic", "outcome", "cell"].forEach(function (f) {
    document.getElementById("sel-" + f).addEventListener("change", function (ev) {
      if (f === "cell") { state.skill = ""; state.topic = ""; state.outcome = ""; }
      state[f] = ev.target.value; render();
    });
  });

  function extras() {
    var ul = document.getElementById("files");
    D.files.forEach(function (f) { ul.appendChild(el("li", {"class": "small"}, f)); });
    if (D.warnings.length) {
      var w = document.getElementById("warnings");
      w.appendChild(el("h2", {}, "Skipped"));
      var list = el("ul");
      D.warnings.forEach(function (x) { list.appendChild(el("li", {"class": "small"}, x)); });
      w.appendChild(list);
    }
    document.getElementById("note").textContent = D.note + " Generated " + D.generated +
      (D.baseline ? "; baseline: " + D.baseline : "") + ". Click a column header to sort.";
  }

  buttons();
  extras();
  var h = readHash();
  render();
  if (h.click) h.click.split(",").forEach(function (id) { var b = document.getElementById(id); if (b) b.click(); });
  if (h.select) h.select.split(",").forEach(function (kv) {  // test hook: select-id:value, through the change handler
    var i = kv.indexOf(":"), sel = document.getElementById(kv.slice(0, i));
    if (sel) { sel.value = kv.slice(i + 1); sel.dispatchEvent(new Event("change")); }
  });
  window.addEventListener("hashchange", function () { readHash(); render(); });
})();
