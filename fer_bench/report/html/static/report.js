/* fer-bench report: the page's own script (no library). It switches the tables' statistic and metric,
   draws the figures, lists the runs, shows a run's panel and compares two runs or two methods, from
   assets/data.js (window.FER_REPORT) and runs/<id>.js (one run's panel, loaded when opened).
   Charts and heatmaps are SVG drawn here; every text from the data goes in as text, never as HTML. */
(function () {
  'use strict';
  var R = window.FER_REPORT;
  if (!R) { return; }
  var SVGNS = 'http://www.w3.org/2000/svg';
  var state = { stat: R.stats[0], metric: 'acc', details: {}, waiting: {}, tab: 'overview' };
  var byKey = {};
  R.runs.forEach(function (r) { byKey[r.key] = r; });

  /* ---------- small helpers ---------- */
  function h(tag, attrs) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    for (var i = 2; i < arguments.length; i++) { add(node, arguments[i]); }
    return node;
  }
  function s(tag, attrs) {
    var node = document.createElementNS(SVGNS, tag);
    setAttrs(node, attrs);
    for (var i = 2; i < arguments.length; i++) { add(node, arguments[i]); }
    return node;
  }
  function setAttrs(node, attrs) {
    if (!attrs) { return; }
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) { return; }
      if (k === 'text') { node.textContent = v; } else if (k.slice(0, 2) === 'on') { node.addEventListener(k.slice(2), v); } else { node.setAttribute(k, v === true ? '' : v); }
    });
  }
  function add(node, child) {
    if (child === null || child === undefined || child === false) { return; }
    if (Array.isArray(child)) { child.forEach(function (c) { add(node, c); }); return; }
    node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } return node; }
  function num(v, d) { return (v === null || v === undefined || isNaN(v)) ? 'n/a' : Number(v).toFixed(d === undefined ? 2 : d); }
  function short(v) {
    if (v === null || v === undefined) { return 'n/a'; }
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-4 || a >= 1e6)) { return Number(Number(v).toPrecision(3)).toExponential(); }
    return String(Number(v.toPrecision(4)));
  }
  function pct(v) { return (v === null || v === undefined) ? 'n/a' : num(v, 2); }
  function seconds(v) {
    if (v === null || v === undefined) { return 'n/a'; }
    return v >= 3600 ? (v / 3600).toFixed(1) + ' h' : v >= 60 ? (v / 60).toFixed(1) + ' min' : v.toFixed(0) + ' s';
  }
  function swatch(color, dash) {
    return s('svg', { width: 22, height: 10, class: 'swatch', 'aria-hidden': 'true' },
      s('line', { x1: 1, y1: 5, x2: 21, y2: 5, stroke: color, 'stroke-width': 2.2, 'stroke-dasharray': dash || null }));
  }
  function runHref(key) { return '#run/' + encodeURIComponent(key); }
  function groupHref(group) { return '#runs/' + encodeURIComponent(group); }
  function statLabel(stat) { return stat + ' (' + R.stat_text[stat] + ')'; }

  /* ---------- tooltip ---------- */
  var tip = document.getElementById('tip');
  function showTip(content, ev) {
    clear(tip); add(tip, content); tip.hidden = false;
    var x = ev.clientX + 14, y = ev.clientY + 14, w = tip.offsetWidth, hh = tip.offsetHeight;
    if (x + w > window.innerWidth - 8) { x = ev.clientX - w - 14; }
    if (y + hh > window.innerHeight - 8) { y = ev.clientY - hh - 14; }
    tip.style.left = Math.max(4, x) + 'px'; tip.style.top = Math.max(4, y) + 'px';
  }
  function hideTip() { tip.hidden = true; }

  /* ---------- axes ---------- */
  function niceStep(span, n) {
    var raw = span / Math.max(1, n), mag = Math.pow(10, Math.floor(Math.log10(raw))), r = raw / mag;
    return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 2.5 ? 2.5 : r <= 5 ? 5 : 10) * mag;
  }
  function ticks(lo, hi, n, integer) {
    var step = niceStep(hi - lo, n), out = [];
    if (integer) { step = step < 1 ? 1 : step === 2.5 ? 2 : step === 25 ? 20 : step; }
    for (var v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) { out.push(Math.abs(v) < step * 1e-9 ? 0 : v); }
    return out;
  }
  function domain(values, pad, floor0, exact) {
    var f = values.filter(function (v) { return v !== null && v !== undefined && isFinite(v); });
    if (!f.length) { return [0, 1]; }
    var lo = Math.min.apply(null, f), hi = Math.max.apply(null, f);
    if (lo === hi) { var d = Math.abs(lo) * 0.05 || 1; lo -= d; hi += d; }
    var p = (hi - lo) * (pad || 0.06);
    if (exact) { return [lo - p, hi + p]; }
    lo -= p; hi += p;
    if (floor0 && lo < 0 && Math.min.apply(null, f) >= 0) { lo = 0; }
    var step = niceStep(hi - lo, 5);
    return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
  }

  /* ---------- line chart ----------
     o: {title, series: [{name, color, dash, width, band, points: [{x, y, lo, hi, ...}]}], xLabel, yLabel,
         yDomain, xTicks, hover: 'x' | 'point', tipPoint(series, point) -> node, tipX(x, rows) -> node,
         onPoint(series, point), legend: true, width, height} */
  function lineChart(o) {
    var W = o.width || 430, H = o.height || 250, m = { l: 50, r: 12, t: o.title ? 24 : 10, b: 38 };
    var xs = [], ys = [];
    o.series.forEach(function (se) {
      se.points.forEach(function (p) {
        xs.push(p.x);
        if (p.y !== null) { ys.push(p.y); }
        if (se.band && p.lo !== null && p.lo !== undefined) { ys.push(p.lo, p.hi); }
      });
    });
    var xd = domain(xs, 0.03, false, true), yd = o.yDomain || domain(ys, 0.06);
    if (o.xTicks && o.xTicks.length) { var xpad = 0.05 * Math.max(o.xTicks[o.xTicks.length - 1] - o.xTicks[0], 0.1); xd = [o.xTicks[0] - xpad, o.xTicks[o.xTicks.length - 1] + xpad]; }
    var iw = W - m.l - m.r, ih = H - m.t - m.b;
    function sx(v) { return m.l + (v - xd[0]) / (xd[1] - xd[0]) * iw; }
    function sy(v) { return m.t + ih - (v - yd[0]) / (yd[1] - yd[0]) * ih; }
    var root = s('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': o.title || o.yLabel || 'chart' });
    if (o.title) { root.appendChild(s('text', { x: m.l, y: 15, class: 'ctitle', text: o.title })); }
    var whole = xs.every(function (v) { return v === null || Math.round(v) === v; });
    var yt = ticks(yd[0], yd[1], 5), xt = o.xTicks || ticks(xd[0], xd[1], 6, whole);
    yt.forEach(function (v) {
      root.appendChild(s('line', { x1: m.l, x2: m.l + iw, y1: sy(v), y2: sy(v), class: 'grid' }));
      root.appendChild(s('text', { x: m.l - 6, y: sy(v) + 3.5, class: 'tick', 'text-anchor': 'end', text: short(v) }));
    });
    xt.forEach(function (v) {
      if (v < xd[0] - 1e-9 || v > xd[1] + 1e-9) { return; }
      root.appendChild(s('line', { x1: sx(v), x2: sx(v), y1: m.t + ih, y2: m.t + ih + 4, class: 'axis' }));
      root.appendChild(s('text', { x: sx(v), y: m.t + ih + 15, class: 'tick', 'text-anchor': 'middle', text: short(v) }));
    });
    root.appendChild(s('line', { x1: m.l, x2: m.l + iw, y1: m.t + ih, y2: m.t + ih, class: 'axis' }));
    root.appendChild(s('line', { x1: m.l, x2: m.l, y1: m.t, y2: m.t + ih, class: 'axis' }));
    if (o.xLabel) { root.appendChild(s('text', { x: m.l + iw / 2, y: H - 5, class: 'alabel', 'text-anchor': 'middle', text: o.xLabel })); }
    if (o.yLabel) { root.appendChild(s('text', { x: -(m.t + ih / 2), y: 12, transform: 'rotate(-90)', class: 'alabel', 'text-anchor': 'middle', text: o.yLabel })); }
    var layers = [];
    o.series.forEach(function (se) {
      var g = s('g', { class: 'series' });
      var pts = se.points.filter(function (p) { return p.x !== null; });
      if (se.band) {
        var b = pts.filter(function (p) { return p.lo !== null && p.lo !== undefined && p.y !== null; });
        if (b.length > 1) {
          var d = b.map(function (p, i) { return (i ? 'L' : 'M') + sx(p.x).toFixed(1) + ',' + sy(p.hi).toFixed(1); }).join('') +
            b.slice().reverse().map(function (p) { return 'L' + sx(p.x).toFixed(1) + ',' + sy(p.lo).toFixed(1); }).join('') + 'Z';
          g.appendChild(s('path', { d: d, fill: se.color, 'fill-opacity': 0.16, stroke: 'none' }));
        }
      }
      var path = '', pen = false;
      pts.forEach(function (p) {
        if (p.y === null) { pen = false; return; }
        path += (pen ? 'L' : 'M') + sx(p.x).toFixed(1) + ',' + sy(p.y).toFixed(1); pen = true;
      });
      g.appendChild(s('path', { d: path, fill: 'none', stroke: se.color, 'stroke-width': se.width || 1.8, 'stroke-dasharray': se.dash || null, 'stroke-linejoin': 'round' }));
      if (o.hover === 'point' || pts.length <= 12) {
        pts.forEach(function (p) { if (p.y !== null) { g.appendChild(s('circle', { cx: sx(p.x), cy: sy(p.y), r: o.hover === 'point' ? 3.4 : 2.2, fill: se.color })); } });
      }
      root.appendChild(g);
      layers.push(g);
    });
    var guide = s('line', { y1: m.t, y2: m.t + ih, class: 'guide', visibility: 'hidden' });
    var mark = s('circle', { r: 6, class: 'mark', visibility: 'hidden' });
    root.appendChild(guide); root.appendChild(mark);
    var hidden = o.series.map(function () { return false; });
    var overlay = s('rect', { x: m.l, y: m.t, width: iw, height: ih, class: 'overlay' });
    root.appendChild(overlay);
    function local(ev) {
      var r = root.getBoundingClientRect();
      return { x: (ev.clientX - r.left) * W / r.width, y: (ev.clientY - r.top) * H / r.height };
    }
    function nearestPoint(ev) {
      var q = local(ev), best = null, bd = 18 * 18;
      o.series.forEach(function (se, i) {
        if (hidden[i]) { return; }
        se.points.forEach(function (p) {
          if (p.y === null) { return; }
          var dx = sx(p.x) - q.x, dy = sy(p.y) - q.y, d = dx * dx + dy * dy;
          if (d < bd) { bd = d; best = { se: se, p: p }; }
        });
      });
      return best;
    }
    overlay.addEventListener('mousemove', function (ev) {
      if (o.hover === 'point') {
        var hit = nearestPoint(ev);
        if (!hit) { mark.setAttribute('visibility', 'hidden'); overlay.style.cursor = ''; hideTip(); return; }
        mark.setAttribute('cx', sx(hit.p.x)); mark.setAttribute('cy', sy(hit.p.y)); mark.setAttribute('stroke', hit.se.color);
        mark.setAttribute('visibility', 'visible'); overlay.style.cursor = o.onPoint ? 'pointer' : '';
        showTip(o.tipPoint ? o.tipPoint(hit.se, hit.p) : hit.se.name + ': ' + short(hit.p.y), ev);
        return;
      }
      var q = local(ev), x = null, bd = Infinity;
      xs.forEach(function (v) { var d = Math.abs(sx(v) - q.x); if (d < bd) { bd = d; x = v; } });
      if (x === null) { return; }
      guide.setAttribute('x1', sx(x)); guide.setAttribute('x2', sx(x)); guide.setAttribute('visibility', 'visible');
      var rows = [];
      o.series.forEach(function (se, i) {
        if (hidden[i]) { return; }
        var p = se.points.filter(function (pp) { return pp.x === x; })[0];
        if (p) { rows.push({ se: se, p: p }); }
      });
      var box = h('div', null, h('div', { class: 'tip-title', text: (o.xName || o.xLabel || 'x') + ' ' + short(x) }));
      rows.forEach(function (r) { box.appendChild(h('div', { class: 'tip-row' }, swatch(r.se.color, r.se.dash), ' ' + r.se.name + ': ', h('b', { text: r.p.y === null ? 'n/a' : short(r.p.y) }))); });
      showTip(o.tipX ? o.tipX(x, rows) : box, ev);
    });
    overlay.addEventListener('mouseleave', function () { guide.setAttribute('visibility', 'hidden'); mark.setAttribute('visibility', 'hidden'); hideTip(); });
    overlay.addEventListener('click', function (ev) {
      if (o.hover !== 'point' || !o.onPoint) { return; }
      var hit = nearestPoint(ev);
      if (hit) { hideTip(); o.onPoint(hit.se, hit.p); }
    });
    var wrap = h('figure', { class: 'chart-wrap', style: 'max-width:' + W + 'px' }, root);
    if (o.legend !== false) {
      var legend = h('figcaption', { class: 'legend' });
      o.series.forEach(function (se, i) {
        legend.appendChild(h('button', {
          type: 'button', class: 'item', title: 'show or hide',
          onclick: function () { hidden[i] = !hidden[i]; layers[i].style.display = hidden[i] ? 'none' : ''; this.classList.toggle('off', hidden[i]); }
        }, swatch(se.color, se.dash), ' ' + se.name));
      });
      wrap.appendChild(legend);
    }
    return wrap;
  }

  /* ---------- heatmap ----------
     o: {title, rows, cols, values, rowLabel, colLabel, color: [r, g, b], share: per-row fractions shade
         the cells (true) or value / max (false), fmt(v) -> text, tip(i, j) -> text} */
  function heatmap(o) {
    var n = o.rows.length, c = o.cols.length, cell = c > 8 ? 30 : 38, left = 92, top = o.title ? 26 : 8, bottom = 74;
    var W = left + c * cell + 56, H = top + n * cell + bottom;
    var root = s('svg', { class: 'heatmap', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': o.title || 'matrix' });
    if (o.title) { root.appendChild(s('text', { x: 4, y: 15, class: 'ctitle', text: o.title })); }
    var max = 0;
    o.values.forEach(function (row) { row.forEach(function (v) { if (v !== null && v > max) { max = v; } }); });
    o.values.forEach(function (row, i) {
      var total = row.reduce(function (a, v) { return a + (v || 0); }, 0);
      row.forEach(function (v, j) {
        var t = v === null ? 0 : o.share ? (total ? v / total : 0) : (max ? v / max : 0);
        var col = o.color.map(function (ch) { return Math.round(255 - (255 - ch) * t); });
        var rect = s('rect', { x: left + j * cell, y: top + i * cell, width: cell - 1, height: cell - 1, fill: 'rgb(' + col.join(',') + ')', class: 'cell' });
        rect.addEventListener('mousemove', function (ev) { showTip(o.tip ? o.tip(i, j) : o.rows[i] + ' → ' + o.cols[j] + ': ' + v, ev); });
        rect.addEventListener('mouseleave', hideTip);
        root.appendChild(rect);
        root.appendChild(s('text', { x: left + j * cell + (cell - 1) / 2, y: top + i * cell + cell / 2 + 3.5, 'text-anchor': 'middle', class: 'cval' + (t > 0.55 ? ' dark' : ''), text: v === null ? '' : (o.fmt ? o.fmt(v) : String(v)) }));
      });
      root.appendChild(s('text', { x: left - 6, y: top + i * cell + cell / 2 + 3.5, 'text-anchor': 'end', class: 'tick', text: o.rows[i] }));
    });
    o.cols.forEach(function (name, j) {
      var x = left + j * cell + cell / 2, y = top + n * cell + 8;
      root.appendChild(s('text', { x: x, y: y, transform: 'rotate(40 ' + x + ' ' + y + ')', class: 'tick', text: name }));
    });
    root.appendChild(s('text', { x: left + c * cell / 2, y: H - 4, 'text-anchor': 'middle', class: 'alabel', text: o.colLabel || '' }));
    root.appendChild(s('text', { x: -(top + n * cell / 2), y: 11, transform: 'rotate(-90)', 'text-anchor': 'middle', class: 'alabel', text: o.rowLabel || '' }));
    return h('figure', { class: 'chart-wrap' }, root);
  }
  function confusionMap(conf, title) {
    return heatmap({
      title: title, rows: conf.names, cols: conf.names, values: conf.matrix, color: [8, 81, 156], share: true,
      rowLabel: 'true class', colLabel: 'predicted (shade: share of the true class)',
      tip: function (i, j) {
        var row = conf.matrix[i], total = row.reduce(function (a, v) { return a + v; }, 0);
        return 'true ' + conf.names[i] + ', predicted ' + conf.names[j] + ': ' + row[j] + ' test images (' + num(total ? 100 * row[j] / total : 0, 1) + '% of ' + conf.names[i] + ')';
      }
    });
  }
  function transitionMap(noise, title) {
    return heatmap({
      title: title, rows: noise.class_names, cols: noise.class_names, values: noise.transition, color: [84, 39, 143],
      share: false, rowLabel: 'true class', colLabel: 'noisy training label',
      fmt: function (v) { return v === 0 ? '0' : v.toFixed(2); },
      tip: function (i, j) { return 'P(noisy label ' + noise.class_names[j] + ' | true ' + noise.class_names[i] + ') = ' + num(noise.transition[i][j], 3); }
    });
  }

  /* ---------- loading a run's panel data ---------- */
  window.ferReportRun = function (d) {
    state.details[d.key] = d;
    (state.waiting[d.key] || []).forEach(function (w) { w.ok(d); });
    delete state.waiting[d.key];
  };
  function loadRun(key) {
    if (state.details[key]) { return Promise.resolve(state.details[key]); }
    var run = byKey[key];
    if (!run) { return Promise.reject(new Error('no run ' + key + ' in this report')); }
    return new Promise(function (ok, fail) {
      var first = !state.waiting[key];
      (state.waiting[key] = state.waiting[key] || []).push({ ok: ok, fail: fail });
      if (!first) { return; }
      var tag = document.createElement('script');
      tag.src = 'runs/' + run.file;
      tag.onerror = function () {
        (state.waiting[key] || []).forEach(function (w) { w.fail(new Error('could not load ' + tag.src)); });
        delete state.waiting[key];
      };
      document.head.appendChild(tag);
    });
  }

  /* ---------- statistic and metric ---------- */
  function viewId() { return state.metric + '-' + state.stat; }
  function applyView() {
    document.querySelectorAll('[data-stat]').forEach(function (b) { b.setAttribute('aria-pressed', String(b.getAttribute('data-stat') === state.stat)); });
    document.querySelectorAll('[data-metric]').forEach(function (b) { b.setAttribute('aria-pressed', String(b.getAttribute('data-metric') === state.metric)); });
    document.querySelectorAll('.table-view').forEach(function (v) { v.hidden = v.getAttribute('data-view') !== viewId(); });
    document.getElementById('stat-words').textContent = R.metric_text[state.metric] + ', ' + (R.stat_words[state.stat] || '');
    drawAccuracy();
    if (state.tab === 'runs') { showRuns(state.runsFilter); }
  }
  document.querySelectorAll('[data-stat]').forEach(function (b) { b.addEventListener('click', function () { state.stat = b.getAttribute('data-stat'); applyView(); }); });
  document.querySelectorAll('[data-metric]').forEach(function (b) { b.addEventListener('click', function () { state.metric = b.getAttribute('data-metric'); applyView(); }); });

  /* ---------- figures ---------- */
  function drawAccuracy() {
    var box = clear(document.getElementById('fig-accuracy'));
    var fig = R.accuracy[viewId()];
    if (!fig || fig.message) { box.appendChild(h('p', { class: 'note', text: fig ? fig.message : 'not computed for this statistic' })); return; }
    var panels = h('div', { class: 'panels' }), picked = h('div', { class: 'picked', id: 'picked' });
    var legendLines = {};
    fig.panels.forEach(function (panel) {
      var xt = [];
      panel.lines.forEach(function (l) { legendLines[l.line] = l; l.points.forEach(function (p) { if (xt.indexOf(p.x) < 0) { xt.push(p.x); } }); });
      xt.sort(function (a, b) { return a - b; });
      panels.appendChild(lineChart({
        title: panel.title, xLabel: fig.x_label, yLabel: fig.y_label, xTicks: xt, hover: 'point', legend: false,
        series: panel.lines.map(function (l) {
          return { name: l.title, color: l.color, dash: l.dash, band: true, points: l.points.map(function (p) {
            return { x: p.x, y: p.y, lo: p.std === null ? null : p.y - p.std, hi: p.std === null ? null : p.y + p.std, info: p };
          }) };
        }),
        tipPoint: function (se, p) {
          var i = p.info, box2 = h('div', null, h('div', { class: 'tip-title' }, swatch(se.color, se.dash), ' ' + se.name + ' · ' + i.title),
            h('div', null, 'mean ', h('b', { text: num(i.y) }), i.std === null ? '' : ' ± ' + num(i.std), ' (' + i.n + ' seed' + (i.n === 1 ? '' : 's') + ')'));
          i.runs.forEach(function (r) { box2.appendChild(h('div', { class: 'tip-row', text: 'seed ' + r.seed + ': ' + num(r.value) + '   ' + r.key })); });
          box2.appendChild(h('div', { class: 'tip-hint', text: 'click: list these runs' }));
          return box2;
        },
        onPoint: function (se, p) {
          var i = p.info;
          clear(picked);
          picked.appendChild(h('div', { class: 'tip-title' }, swatch(se.color, se.dash), ' ' + se.name + ' · ' + i.title + ': ' + num(i.y) + (i.std === null ? '' : ' ± ' + num(i.std)) + ' ',
            h('a', { href: groupHref(i.group), text: 'all in the runs list' }), ' · ', h('a', { href: '#compare/' + encodeURIComponent('g:' + i.group) + '/', text: 'compare' })));
          var ul = h('ul');
          i.runs.forEach(function (r) { ul.appendChild(h('li', null, h('a', { href: runHref(r.key), text: r.key }), ' (seed ' + r.seed + '): ' + num(r.value))); });
          picked.appendChild(ul);
        }
      }));
    });
    box.appendChild(panels);
    box.appendChild(figureLegend(Object.keys(legendLines).map(function (k) { return legendLines[k]; }), fig.note));
    box.appendChild(picked);
  }
  function figureLegend(lines, note) {
    var legend = h('div', { class: 'legend' });
    lines.forEach(function (l) { legend.appendChild(h('span', { class: 'item' }, swatch(l.color, l.dash), ' ' + l.title)); });
    if (note) { legend.appendChild(h('span', { class: 'legend-note', text: note })); }
    return legend;
  }
  function drawMemorisation() {
    var box = clear(document.getElementById('fig-memorisation')), fig = R.memorisation;
    if (fig.message) { box.appendChild(h('p', { class: 'note', text: fig.message })); return; }
    var panels = h('div', { class: 'panels' });
    fig.panels.forEach(function (panel) {
      panels.appendChild(lineChart({
        title: panel.title, xLabel: fig.x_label, xName: 'epoch', yLabel: '% of flipped images', yDomain: [0, 100], hover: 'x', legend: false, width: 380, height: 230,
        series: panel.lines.map(function (l) { return { name: l.title, color: l.color, dash: l.dash, width: 1.6, points: l.points }; })
      }));
    });
    box.appendChild(panels);
    box.appendChild(figureLegend(fig.legend, fig.note));
  }
  function drawMechanisms() {
    var box = clear(document.getElementById('fig-mechanisms')), fig = R.mechanisms;
    if (!fig || fig.message) { box.appendChild(h('p', { class: 'note', text: fig ? fig.message : '' })); return; }
    var panels = h('div', { class: 'panels' });
    fig.panels.forEach(function (panel) {
      panels.appendChild(lineChart({
        title: panel.title, xLabel: fig.x_label, xName: 'epoch', yLabel: 'share / AUROC', yDomain: [0, 1], hover: 'x', legend: true, width: 380, height: 230,
        series: panel.lines.map(function (l) { return { name: l.title, color: l.color, dash: l.dash, width: 1.6, points: l.points }; })
      }));
    });
    box.appendChild(panels);
    box.appendChild(h('p', { class: 'legend-note', text: fig.note }));
  }
  function drawMatrices() {
    var box = clear(document.getElementById('fig-matrices'));
    var select = runSelect(function (r) { return r.noise !== 'none'; });
    var view = h('div', { class: 'pair' });
    box.appendChild(h('p', null, 'Run: ', select, ' ', h('span', { class: 'hint', text: 'its realised noise transition matrix and its final confusion matrix on the clean test set' })));
    box.appendChild(view);
    function show() {
      clear(view).appendChild(h('p', { class: 'note', text: 'loading…' }));
      loadRun(select.value).then(function (d) {
        clear(view);
        if (d.noise && d.noise.transition.length) { view.appendChild(transitionMap(d.noise, 'noise transition · realised rate ' + num(100 * d.noise.realised_rate, 1) + '%')); }
        if (d.confusion) { view.appendChild(confusionMap(d.confusion, 'confusion (last epoch)')); }
        view.appendChild(h('p', null, h('a', { href: runHref(d.key), text: 'open the run' })));
      }, function (e) { clear(view).appendChild(h('p', { class: 'alert', text: e.message })); });
    }
    select.addEventListener('change', show);
    if (select.value) { show(); }
  }
  function runSelect(prefer, chosen) {
    var select = h('select', { class: 'run-select' }), groups = {};
    R.runs.forEach(function (r) {
      var label = r.dataset + ' · ' + r.setting_title;
      if (!groups[label]) { groups[label] = h('optgroup', { label: label }); select.appendChild(groups[label]); }
      groups[label].appendChild(h('option', { value: r.key, text: r.title + ' · seed ' + r.seed }));
    });
    var first = R.runs.filter(prefer || function () { return true; })[0] || R.runs[0];
    select.value = chosen || (first ? first.key : '');
    return select;
  }

  /* ---------- runs list ---------- */
  function showRuns(filter) {
    state.runsFilter = filter || '';
    var sec = clear(document.getElementById('tab-runs'));
    var m = state.metric, input = h('input', { type: 'search', placeholder: 'filter: method, setting, seed, path…', value: filter && filter.indexOf('/') < 0 ? filter : '', 'aria-label': 'filter the runs' });
    var group = filter && filter.indexOf('/') >= 0 ? filter : '';
    sec.appendChild(h('h2', null, 'Runs ', h('small', { text: R.metric_text[m] + ' under each statistic; click a run for its panel' })));
    var bar = h('div', { class: 'runs-bar' }, input);
    var go = h('button', { type: 'button', class: 'primary', disabled: true, text: 'compare the two ticked runs' });
    bar.appendChild(go);
    if (group) { bar.appendChild(h('span', { class: 'chip' }, 'the runs of ' + group + ' ', h('a', { href: '#runs', text: '× show all' }))); }
    sec.appendChild(bar);
    var ticked = [];
    go.addEventListener('click', function () { if (ticked.length === 2) { location.hash = '#compare/' + encodeURIComponent(ticked[0]) + '/' + encodeURIComponent(ticked[1]); } });
    var head = h('tr', null, h('th', { text: '' }), h('th', { text: 'dataset' }), h('th', { text: 'setting' }), h('th', { text: 'method' }), h('th', { text: 'seed' }), h('th', { text: 'epochs' }));
    R.stats.forEach(function (st) { head.appendChild(h('th', { class: 'num' + (st === state.stat ? ' current' : ''), text: st })); });
    head.appendChild(h('th', { class: 'num', text: 'train time' }));
    var body = h('tbody');
    var table = h('table', { class: 'runs' }, h('thead', null, head), body);
    sec.appendChild(h('div', { class: 'table-wrap' }, table));
    var rows = [];
    R.runs.forEach(function (r) {
      var box = h('input', { type: 'checkbox', 'aria-label': 'tick for compare' });
      box.addEventListener('change', function () {
        if (box.checked) { ticked.push(r.key); if (ticked.length > 2) { var old = ticked.shift(); rows.forEach(function (x) { if (x.r.key === old) { x.box.checked = false; } }); } } else { ticked = ticked.filter(function (k) { return k !== r.key; }); }
        go.disabled = ticked.length !== 2;
      });
      var tr = h('tr', { 'data-key': r.key, 'data-group': r.group },
        h('td', null, box), h('td', { text: r.dataset }), h('td', { text: r.setting_title }),
        h('td', null, h('span', { class: 'dot', style: 'background:' + r.color }), ' ', h('a', { href: runHref(r.key), text: r.title })),
        h('td', { class: 'num', text: r.seed }), h('td', { class: 'num', text: r.epochs }));
      R.stats.forEach(function (st) { tr.appendChild(h('td', { class: 'num' + (st === state.stat ? ' current' : ''), text: pct(r.stats[m + '_' + st]) })); });
      tr.appendChild(h('td', { class: 'num', text: seconds(r.train_seconds) }));
      body.appendChild(tr);
      rows.push({ r: r, tr: tr, box: box, text: [r.dataset, r.setting, r.setting_title, r.title, r.variant, 'seed' + r.seed, r.key].join(' ').toLowerCase() });
    });
    var count = h('p', { class: 'note' });
    sec.appendChild(count);
    function apply() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
      rows.forEach(function (x) {
        var ok = (!group || x.r.group === group) && words.every(function (w) { return x.text.indexOf(w) >= 0; });
        x.tr.hidden = !ok; shown += ok ? 1 : 0;
      });
      count.textContent = shown + ' of ' + R.runs.length + ' runs shown';
    }
    input.addEventListener('input', apply);
    apply();
    if (R.unfinished.length || R.bad.length) {
      sec.appendChild(h('h3', { text: 'Not in the list' }));
      var ul = h('ul');
      R.unfinished.forEach(function (u) { ul.appendChild(h('li', null, 'unfinished: ', h('code', { text: u.path }), ' at epoch ' + u.epochs_done + (u.epochs ? ' of ' + u.epochs : ''))); });
      R.bad.forEach(function (b) { ul.appendChild(h('li', { class: 'bad' }, 'unreadable: ', h('code', { text: b.path }), ': ' + b.problem)); });
      sec.appendChild(ul);
    }
  }

  /* ---------- a run's panel ---------- */
  function statCards(run) {
    var cards = h('div', { class: 'cards' });
    R.stats.forEach(function (st) {
      cards.appendChild(h('div', { class: 'card' + (st === state.stat ? ' current' : '') }, h('div', { class: 'k', text: 'accuracy · ' + st }), h('div', { class: 'v', text: pct(run.stats['acc_' + st]) + (run.stats['acc_' + st] === null ? '' : ' %') })));
    });
    var mca = run.stats['mean_class_acc_' + state.stat];
    cards.appendChild(h('div', { class: 'card' }, h('div', { class: 'k', text: 'mean class acc · ' + state.stat }), h('div', { class: 'v', text: pct(mca) + (mca === null ? '' : ' %') })));
    cards.appendChild(h('div', { class: 'card' }, h('div', { class: 'k', text: 'noise · realised' }), h('div', { class: 'v', text: run.noise === 'none' ? 'clean' : num(100 * run.realised_rate, 2) + ' %' })));
    cards.appendChild(h('div', { class: 'card' }, h('div', { class: 'k', text: 'epochs · train time' }), h('div', { class: 'v', text: run.epochs + ' · ' + seconds(run.train_seconds) })));
    return cards;
  }
  function curveCharts(sides, groups, opts) {
    /* sides: [{label, color?, metrics: {columns}}]; one chart per group and side, y shared across sides */
    var grid = h('div', { class: sides.length > 1 ? 'side-by-side' : 'panels' });
    groups.forEach(function (g) {
      var ys = [];
      var series = sides.map(function (side) {
        return g.columns.filter(function (c) { return side.metrics[c]; }).map(function (c, i) {
          var epochs = side.metrics.epoch || side.metrics[c].map(function (_, k) { return k + 1; });
          var pts = side.metrics[c].map(function (v, k) { var y = v === null ? null : v * g.scale; if (y !== null) { ys.push(y); } return { x: epochs[k], y: y }; });
          return { name: c, color: R.palette[g.columns.indexOf(c) % R.palette.length], points: pts };
        });
      });
      var yd = domain(ys, 0.06, true);
      sides.forEach(function (side, k) {
        if (!series[k].length) {
          grid.appendChild(h('div', { class: 'chart-missing', text: side.label + ' · ' + g.title + ': not recorded by this run' }));
          return;
        }
        grid.appendChild(lineChart({
          title: (sides.length > 1 ? side.label + ' · ' : '') + g.title, xLabel: 'epoch', xName: 'epoch', yLabel: g.unit || '', hover: 'x',
          series: series[k], yDomain: yd, width: opts && opts.width || 430, height: 240
        }));
      });
    });
    return grid;
  }
  function configTable(sections, compared) {
    var wrap = h('div', { class: 'config' });
    sections.forEach(function (sec) {
      var t = h('table', { class: 'kv' });
      var head = h('tr', null, h('th', { text: 'key' }), h('th', { text: 'value' }));
      if (sec.compared) { head.appendChild(h('th', { text: "method's default today" })); }
      t.appendChild(h('thead', null, head));
      var body = h('tbody');
      sec.rows.forEach(function (r) {
        var tr = h('tr', { class: r.differs ? 'differs' : null },
          h('td', null, h('code', { text: r.key }), r.set ? h('span', { class: 'badge', text: '--set' }) : null),
          h('td', null, h('code', { text: r.value })));
        if (sec.compared) { tr.appendChild(h('td', null, r.differs ? h('code', { text: r['default'] }) : h('span', { class: 'same', text: 'same' }))); }
        body.appendChild(tr);
      });
      t.appendChild(body);
      var n = sec.rows.filter(function (r) { return r.differs; }).length;
      wrap.appendChild(h('details', { open: true }, h('summary', null, sec.title, sec.compared ? h('span', { class: n ? 'badge warn' : 'badge', text: n ? n + ' differ from the default' : 'all default' }) : null), t));
    });
    return wrap;
  }
  function kvTable(rows) {
    var t = h('table', { class: 'kv' }), body = h('tbody');
    rows.forEach(function (r) { body.appendChild(h('tr', null, h('td', null, h('code', { text: r.key })), h('td', null, h('code', { text: r.value })))); });
    t.appendChild(body);
    return t;
  }
  function noiseBlock(noise) {
    if (!noise) { return h('p', { class: 'note', text: 'no noise record in this run directory' }); }
    var facts = h('p', null, 'model ', h('b', { text: noise.model }), ' (' + noise.mode + '), nominal rate ', h('b', { text: noise.rate === null ? 'n/a' : String(noise.rate) }),
      ', realised ', h('b', { text: num(100 * noise.realised_rate, 2) + ' %' }), ': ' + noise.n_flipped + ' of ' + noise.n + ' training labels flipped; noise seed ' + noise.noise_seed + '.');
    var t = h('table', { class: 'kv flips' }, h('thead', null, h('tr', null, ['class', 'clean images', 'flipped', 'flip rate', 'noisy labels', 'of them wrong'].map(function (x) { return h('th', { text: x }); }))));
    var body = h('tbody');
    noise.table.forEach(function (r) {
      body.appendChild(h('tr', null, h('td', { text: r['class'] }), h('td', { class: 'num', text: r.count }), h('td', { class: 'num', text: r.flipped }),
        h('td', { class: 'num', text: r.flip_rate === null ? 'n/a' : num(100 * r.flip_rate, 1) + ' %' }), h('td', { class: 'num', text: r.noisy_count }),
        h('td', { class: 'num', text: r.wrong_share === null ? 'n/a' : num(100 * r.wrong_share, 1) + ' %' })));
    });
    t.appendChild(body);
    return h('div', null, facts, h('div', { class: 'pair' }, h('div', null, t), noise.transition.length ? transitionMap(noise, 'realised transition matrix') : null),
      noise.sha256 ? h('p', { class: 'note' }, 'label file sha256 ', h('code', { text: noise.sha256 })) : null);
  }
  function commandBlock(command) {
    var pre = h('pre', { class: 'command' }, h('code', { text: command }));
    var btn = h('button', { type: 'button', class: 'copy', text: 'copy' });
    btn.addEventListener('click', function () {
      var done = function () { btn.textContent = 'copied'; setTimeout(function () { btn.textContent = 'copy'; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(command).then(done, function () {}); return; }
      var range = document.createRange(); range.selectNodeContents(pre);
      var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
      try { document.execCommand('copy'); done(); } catch (e) { /* selected: the reader copies it */ }
    });
    return h('div', { class: 'command-wrap' }, pre, btn);
  }
  function showRun(key) {
    var sec = clear(document.getElementById('tab-run'));
    var run = byKey[key];
    if (!run) { sec.appendChild(h('p', { class: 'alert', text: 'No run ' + key + ' in this report.' })); return; }
    sec.appendChild(h('p', { class: 'crumbs' }, h('a', { href: '#runs', text: '← runs' }), ' · ', h('a', { href: groupHref(run.group), text: 'its seeds' }), ' · ',
      h('a', { href: '#compare/' + encodeURIComponent(key) + '/', text: 'compare with…' })));
    sec.appendChild(h('h2', { class: 'run-title' }, h('span', { class: 'dot', style: 'background:' + run.color }), ' ' + run.title + ' · ' + run.dataset + ' · ' + run.setting_title + ' · seed ' + run.seed));
    sec.appendChild(h('p', { class: 'path' }, h('code', { text: key })));
    sec.appendChild(statCards(run));
    var body = h('div', { class: 'run-body' }, h('p', { class: 'note', text: 'loading…' }));
    sec.appendChild(body);
    loadRun(key).then(function (d) {
      clear(body);
      body.appendChild(h('h3', { text: 'Reproduce' }));
      body.appendChild(commandBlock(d.command));
      body.appendChild(h('h3', { text: 'Curves per epoch' }));
      body.appendChild(d.metrics.groups.length ? curveCharts([{ label: run.title, metrics: d.metrics.columns }], d.metrics.groups) : h('p', { class: 'note', text: 'no metrics.csv' }));
      body.appendChild(h('h3', { text: 'Confusion matrix' }));
      body.appendChild(d.confusion ? confusionMap(d.confusion, 'last epoch, clean test set') : h('p', { class: 'note', text: 'none recorded' }));
      body.appendChild(h('h3', { text: 'Noise record' }));
      body.appendChild(noiseBlock(d.noise));
      body.appendChild(h('h3', { text: 'Configuration' }));
      if (d.config_note) { body.appendChild(h('p', { class: 'note', text: d.config_note })); } else { body.appendChild(h('p', { class: 'hint', text: "Highlighted: a value that differs from the method's default recipe today (for its protocol and profile); --set: an override the run was given." })); }
      body.appendChild(configTable(d.config));
      body.appendChild(h('h3', { text: 'Environment' }));
      body.appendChild(d.env.length ? kvTable(d.env) : h('p', { class: 'note', text: 'no env.json' }));
      body.appendChild(h('details', null, h('summary', { text: 'The rest of result.json' }), kvTable(d.result)));
      body.appendChild(h('p', { class: 'note' }, 'Files in the run directory: ', d.files.join(', ')));
    }, function (e) { clear(body).appendChild(h('p', { class: 'alert', text: e.message })); });
  }

  /* ---------- compare ---------- */
  function groupsOf() {
    var out = {};
    R.runs.forEach(function (r) { (out[r.group] = out[r.group] || []).push(r); });
    return out;
  }
  function sideSelect(chosen) {
    var select = h('select', { class: 'side-select' }), groups = groupsOf(), byLabel = {};
    select.appendChild(h('option', { value: '', text: '— pick a run or a method —' }));
    Object.keys(groups).forEach(function (g) {
      var first = groups[g][0], label = first.dataset + ' · ' + first.setting_title;
      if (!byLabel[label]) { byLabel[label] = h('optgroup', { label: label }); select.appendChild(byLabel[label]); }
      byLabel[label].appendChild(h('option', { value: 'g:' + g, text: first.title + ' · mean of ' + groups[g].length + ' seed' + (groups[g].length === 1 ? '' : 's') }));
      groups[g].forEach(function (r) { byLabel[label].appendChild(h('option', { value: r.key, text: '   ' + r.title + ' · seed ' + r.seed })); });
    });
    select.value = chosen || '';
    return select;
  }
  function sideRuns(value) {
    if (!value) { return []; }
    if (value.slice(0, 2) === 'g:') { return groupsOf()[value.slice(2)] || []; }
    return byKey[value] ? [byKey[value]] : [];
  }
  function meanColumns(details) {
    /* epoch-wise mean of every column over the runs (a column a run lacks is left out of its mean) */
    var out = {}, epochs = {};
    details.forEach(function (d) { (d.metrics.columns.epoch || []).forEach(function (e) { epochs[e] = true; }); });
    var xs = Object.keys(epochs).map(Number).sort(function (a, b) { return a - b; });
    var names = {};
    details.forEach(function (d) { Object.keys(d.metrics.columns).forEach(function (c) { names[c] = true; }); });
    Object.keys(names).forEach(function (c) {
      if (c === 'epoch') { return; }
      out[c] = xs.map(function (e) {
        var vals = [];
        details.forEach(function (d) {
          var i = (d.metrics.columns.epoch || []).indexOf(e), col = d.metrics.columns[c];
          if (i >= 0 && col && col[i] !== null) { vals.push(col[i]); }
        });
        return vals.length ? vals.reduce(function (a, v) { return a + v; }, 0) / vals.length : null;
      });
    });
    out.epoch = xs;
    return out;
  }
  function meanStats(runs) {
    var out = {};
    Object.keys(runs[0].stats).forEach(function (k) {
      var v = runs.map(function (r) { return r.stats[k]; });
      out[k] = v.some(function (x) { return x === null; }) ? null : v.reduce(function (a, x) { return a + x; }, 0) / v.length;
    });
    return out;
  }
  function showCompare(a, b) {
    var sec = clear(document.getElementById('tab-compare'));
    sec.appendChild(h('h2', null, 'Compare ', h('small', { text: 'two runs, or two methods in one setting (the mean over their seeds)' })));
    var sa = sideSelect(a), sb = sideSelect(b);
    function go() { location.hash = '#compare/' + encodeURIComponent(sa.value) + '/' + encodeURIComponent(sb.value); }
    sa.addEventListener('change', go); sb.addEventListener('change', go);
    sec.appendChild(h('div', { class: 'pickers' }, h('label', null, h('span', { class: 'side a', text: 'A' }), sa), h('label', null, h('span', { class: 'side b', text: 'B' }), sb)));
    var ra = sideRuns(a), rb = sideRuns(b);
    if (!ra.length || !rb.length) { sec.appendChild(h('p', { class: 'hint', text: 'Pick both sides: a run (one seed) or a method in a setting (the mean over its seeds).' })); return; }
    var body = h('div', null, h('p', { class: 'note', text: 'loading…' }));
    sec.appendChild(body);
    Promise.all(ra.concat(rb).map(function (r) { return loadRun(r.key); })).then(function () {
      clear(body);
      var da = ra.map(function (r) { return state.details[r.key]; }), db = rb.map(function (r) { return state.details[r.key]; });
      function label(runs) { var r = runs[0]; return r.title + ' · ' + r.setting_title + (runs.length > 1 ? ' · mean of ' + runs.length + ' seeds' : ' · seed ' + r.seed); }
      var la = label(ra), lb = label(rb), ma = meanColumns(da), mb = meanColumns(db), sta = meanStats(ra), stb = meanStats(rb);
      var t = h('table', { class: 'kv compare-stats' }, h('thead', null, h('tr', null, h('th', { text: '' }), h('th', null, h('span', { class: 'side a', text: 'A' }), ' ' + la), h('th', null, h('span', { class: 'side b', text: 'B' }), ' ' + lb), h('th', { text: 'B − A' }))));
      var tb = h('tbody');
      R.metrics.forEach(function (mt) {
        R.stats.forEach(function (st) {
          var k = mt + '_' + st, va = sta[k], vb = stb[k];
          tb.appendChild(h('tr', { class: st === state.stat && mt === state.metric ? 'current' : null }, h('td', { text: R.metric_text[mt] + ' · ' + st }), h('td', { class: 'num', text: pct(va) }), h('td', { class: 'num', text: pct(vb) }),
            h('td', { class: 'num', text: va === null || vb === null ? 'n/a' : (vb - va >= 0 ? '+' : '') + num(vb - va) })));
        });
      });
      t.appendChild(tb);
      body.appendChild(t);
      var ca = ra[0].color, cb = rb[0].color === ca ? R.palette[(R.palette.indexOf(ca) + 1) % R.palette.length] : rb[0].color;
      if (ma.test_acc && mb.test_acc) {
        body.appendChild(h('h3', { text: 'Test accuracy per epoch, A against B' }));
        body.appendChild(lineChart({
          xLabel: 'epoch', xName: 'epoch', yLabel: '%', hover: 'x', width: 640, height: 280,
          series: [{ name: 'A: ' + la, color: ca, points: ma.test_acc.map(function (v, i) { return { x: ma.epoch[i], y: v === null ? null : 100 * v }; }) },
                   { name: 'B: ' + lb, color: cb, dash: '6 3', points: mb.test_acc.map(function (v, i) { return { x: mb.epoch[i], y: v === null ? null : 100 * v }; }) }]
        }));
      }
      body.appendChild(h('h3', { text: 'Curves side by side (A left, B right, same y range)' }));
      var groups = [], seen = {};
      da.concat(db).forEach(function (d) { d.metrics.groups.forEach(function (g) { if (!seen[g.title]) { seen[g.title] = g; groups.push({ title: g.title, scale: g.scale, unit: g.unit, columns: g.columns.slice() }); } else { g.columns.forEach(function (c) { var G = groups.filter(function (x) { return x.title === g.title; })[0]; if (G.columns.indexOf(c) < 0) { G.columns.push(c); } }); } }); });
      body.appendChild(curveCharts([{ label: 'A', metrics: ma }, { label: 'B', metrics: mb }], groups, { width: 470 }));
      body.appendChild(h('h3', { text: 'Configuration side by side' }));
      var only = h('input', { type: 'checkbox', checked: true });
      body.appendChild(h('label', { class: 'hint' }, only, ' only the keys that differ'));
      var cfg = h('div');
      body.appendChild(cfg);
      function drawConfig() {
        clear(cfg);
        var A = da[0].config, B = db[0].config, t2 = h('table', { class: 'kv' }, h('thead', null, h('tr', null, h('th', { text: 'key' }), h('th', { text: 'A' + (da.length > 1 ? ' (seed ' + ra[0].seed + "'s)" : '') }), h('th', { text: 'B' + (db.length > 1 ? ' (seed ' + rb[0].seed + "'s)" : '') }))));
        var tb2 = h('tbody'), n = 0;
        var titles = [];
        A.concat(B).forEach(function (sct) { if (titles.indexOf(sct.title) < 0) { titles.push(sct.title); } });
        titles.forEach(function (title) {
          var sa2 = A.filter(function (x) { return x.title === title; })[0] || { rows: [] }, sb2 = B.filter(function (x) { return x.title === title; })[0] || { rows: [] };
          var keys = [];
          sa2.rows.concat(sb2.rows).forEach(function (r) { if (keys.indexOf(r.key) < 0) { keys.push(r.key); } });
          var rows = keys.map(function (k) {
            var x = sa2.rows.filter(function (r) { return r.key === k; })[0], y = sb2.rows.filter(function (r) { return r.key === k; })[0];
            return { key: k, a: x ? x.value : '—', b: y ? y.value : '—' };
          }).filter(function (r) { return !only.checked || r.a !== r.b; });
          if (!rows.length) { return; }
          tb2.appendChild(h('tr', { class: 'section' }, h('th', { colspan: 3, text: title })));
          rows.forEach(function (r) { n += r.a !== r.b ? 1 : 0; tb2.appendChild(h('tr', { class: r.a !== r.b ? 'differs' : null }, h('td', null, h('code', { text: r.key })), h('td', null, h('code', { text: r.a })), h('td', null, h('code', { text: r.b })))); });
        });
        t2.appendChild(tb2);
        cfg.appendChild(n || !only.checked ? t2 : h('p', { class: 'note', text: 'The two configurations are the same.' }));
      }
      only.addEventListener('change', drawConfig);
      drawConfig();
      body.appendChild(h('p', { class: 'note' }, 'Runs: A = ', ra.map(function (r, i) { return [i ? ', ' : '', h('a', { href: runHref(r.key), text: 'seed ' + r.seed })]; }), '; B = ', rb.map(function (r, i) { return [i ? ', ' : '', h('a', { href: runHref(r.key), text: 'seed ' + r.seed })]; })));
    }, function (e) { clear(body).appendChild(h('p', { class: 'alert', text: e.message })); });
  }

  /* ---------- routing ---------- */
  var drawn = {};
  function route() {
    var hash = decodeURIComponent((location.hash || '#overview').slice(1)), parts = hash.split('/');
    var raw = (location.hash || '').slice(1).split('/'), tab = parts[0] || 'overview';
    if (['overview', 'figures', 'runs', 'run', 'compare'].indexOf(tab) < 0) { tab = 'overview'; }
    state.tab = tab;
    document.querySelectorAll('section.tab').forEach(function (sec) { sec.hidden = sec.getAttribute('data-tab') !== tab; });
    document.querySelectorAll('[data-nav]').forEach(function (a) { a.classList.toggle('active', a.getAttribute('data-nav') === (tab === 'run' ? 'runs' : tab)); });
    document.getElementById('controls').hidden = !(tab === 'overview' || tab === 'figures' || tab === 'runs');
    hideTip();
    if (tab === 'figures' && !drawn.figures) { drawn.figures = true; drawMemorisation(); drawMechanisms(); drawMatrices(); }
    if (tab === 'runs') { showRuns(decodeURIComponent(raw.slice(1).join('/'))); }
    if (tab === 'run') { showRun(decodeURIComponent(raw.slice(1).join('/'))); }
    if (tab === 'compare') { showCompare(decodeURIComponent(raw[1] || ''), decodeURIComponent(raw[2] || '')); }
    if (tab !== 'overview') { window.scrollTo(0, 0); }
  }
  window.addEventListener('hashchange', route);
  applyView();
  route();
}());
