'use strict';
/* The analysts' workbench: pages fill themselves from the JSON routes
 * (the session cookie goes along), charts are SVG built here. Every value
 * from the server is put in with textContent or an attribute, never as
 * markup. */
(function () {
  var SVG = 'http://www.w3.org/2000/svg';
  var csrf = '';

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function money(c) { return c === null || c === undefined ? '—' : (c / 100).toFixed(2); }
  function shown(v) { return v === null || v === undefined ? 'under k' : String(v); }
  function status(t) { var s = $('status'); if (s) s.textContent = t; }
  function row(tbody, cells) {
    var tr = el('tr');
    cells.forEach(function (c) {
      var td = el('td', c.text, c.num ? 'num' : '');
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function get(url) {
    return fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) {
        if (r.status === 401) { location.href = '/analyst/'; throw new Error('signed out'); }
        return r.json().then(function (j) {
          if (!r.ok) throw new Error(j.detail || ('error ' + r.status));
          return j;
        });
      });
  }

  /* A line with one point per value; labels under the first and last. */
  function lineChart(box, labels, values, title) {
    var w = 640, h = 220, pad = 36, max = Math.max.apply(null, values.concat([1]));
    var s = svg('svg', { viewBox: '0 0 ' + w + ' ' + h, role: 'img', 'aria-label': title });
    s.appendChild(svg('title', {}, title));
    s.appendChild(svg('line', { x1: pad, y1: h - pad, x2: w - 8, y2: h - pad, 'class': 'axis' }));
    s.appendChild(svg('line', { x1: pad, y1: 8, x2: pad, y2: h - pad, 'class': 'axis' }));
    var step = values.length > 1 ? (w - pad - 16) / (values.length - 1) : 0;
    var pts = values.map(function (v, i) {
      return [pad + 8 + i * step, h - pad - (v / max) * (h - pad - 16)];
    });
    if (pts.length > 1)
      s.appendChild(svg('polyline', { points: pts.map(function (p) { return p.join(','); }).join(' '), 'class': 'line' }));
    pts.forEach(function (p, i) {
      var c = svg('circle', { cx: p[0], cy: p[1], r: 4, 'class': 'pt' });
      c.appendChild(svg('title', {}, labels[i] + ': ' + money(values[i])));
      s.appendChild(c);
    });
    if (labels.length) {
      s.appendChild(svg('text', { x: pad, y: h - 12 }, labels[0]));
      if (labels.length > 1)
        s.appendChild(svg('text', { x: w - 60, y: h - 12 }, labels[labels.length - 1]));
    }
    s.appendChild(svg('text', { x: 2, y: 14 }, money(max)));
    clear(box);
    box.appendChild(s);
  }

  /* Horizontal bars: groups of series per label; null values draw none. */
  function barChart(box, labels, series, title, fmt) {
    var w = 640, rowh = 14 * series.length + 10, left = 180, h = labels.length * rowh + 10;
    var max = 1;
    series.forEach(function (vs) { vs.forEach(function (v) { if (v !== null && v > max) max = v; }); });
    var s = svg('svg', { viewBox: '0 0 ' + w + ' ' + Math.max(h, 30), role: 'img', 'aria-label': title });
    s.appendChild(svg('title', {}, title));
    labels.forEach(function (lab, i) {
      var y0 = 5 + i * rowh;
      s.appendChild(svg('text', { x: 2, y: y0 + 11 }, lab.length > 26 ? lab.slice(0, 25) + '…' : lab));
      series.forEach(function (vs, j) {
        var v = vs[i];
        if (v === null || v === undefined) {
          s.appendChild(svg('text', { x: left, y: y0 + 11 + j * 14 }, 'under k'));
          return;
        }
        var bw = Math.max(1, (v / max) * (w - left - 60));
        var r = svg('rect', { x: left, y: y0 + j * 14, width: bw.toFixed(1), height: 12, 'class': 'bar b' + j });
        r.appendChild(svg('title', {}, lab + ': ' + fmt(v)));
        s.appendChild(r);
        s.appendChild(svg('text', { x: left + bw + 4, y: y0 + 10 + j * 14 }, fmt(v)));
      });
    });
    clear(box);
    box.appendChild(s);
  }

  function household() {
    var hhid = decodeURIComponent(location.pathname.split('/').pop());
    var api = '/v1/analyst/households/' + encodeURIComponent(hhid);
    $('hhid').textContent = hhid;
    $('csv').href = api + '?format=csv';
    $('json').href = api;
    status('Loading…');
    get(api).then(function (h) {
      status('');
      $('baskets').textContent = h.baskets;
      $('spend').textContent = money(h.spend_cents);
      lineChart($('chart'), h.months.map(function (m) { return m.month; }),
                h.months.map(function (m) { return m.spend_cents; }), 'Spend per month');
      var tb = $('months').tBodies[0];
      h.months.forEach(function (m) {
        row(tb, [{ text: m.month }, { text: m.baskets, num: 1 }, { text: money(m.spend_cents), num: 1 }]);
      });
      tb = $('categories').tBodies[0];
      h.categories.forEach(function (c) {
        row(tb, [{ text: c.category || '(not in the item master)' }, { text: c.items, num: 1 },
                 { text: money(c.spend_cents), num: 1 }]);
      });
      var gaps = (h.visits && h.visits.gaps) || [];
      $('mean-gap').textContent = h.visits && h.visits.mean_gap_days !== null
        ? String(h.visits.mean_gap_days) : '— (one visit)';
      barChart($('rhythm'), gaps.map(function (g) { return g.days; }),
               [gaps.map(function (g) { return g.visits; })], 'Visits by days since the last one',
               function (v) { return String(v); });
      tb = $('gaps').tBodies[0];
      gaps.forEach(function (g) { row(tb, [{ text: g.days }, { text: g.visits, num: 1 }]); });
      var stores = h.stores || [];
      barChart($('stores-chart'), stores.map(function (x) { return x.store; }),
               [stores.map(function (x) { return x.spend_cents; })], 'Spend per store', money);
      tb = $('stores').tBodies[0];
      stores.forEach(function (x) {
        row(tb, [{ text: x.store }, { text: x.baskets, num: 1 }, { text: money(x.spend_cents), num: 1 }]);
      });
      tb = $('offers').tBodies[0];
      h.offers.forEach(function (o) {
        row(tb, [{ text: o.title + ' (' + o.offer_id + ')' }, { text: o.redeemed_at }, { text: o.store }]);
      });
      $('summary').hidden = false;
    }).catch(function (e) { status(e.message); });
  }

  function cohorts() {
    var form = $('cohort-form');
    function run() {
      var q = new URLSearchParams();
      ['item', 'from', 'to', 'store'].forEach(function (k) {
        var v = $(k).value.trim();
        if (v) q.set(k, v);
      });
      var api = '/v1/analyst/cohorts?' + q.toString();
      status('Counting…');
      get(api).then(function (c) {
        status('');
        $('households').textContent = shown(c.households);
        $('suppressed').textContent = (c.households === null
          ? 'The count is withheld: it concerns fewer than k households, or differs from a ' +
            'neighbouring query by fewer than k (' + (c.suppressed || '') + '). '
          : '') + (c.suppressed_rows ? c.suppressed_rows + ' rows under k left out.' : '');
        $('csv').href = api + '&format=csv';
        $('json').href = api;
        var tb = $('also').tBodies[0];
        clear(tb);
        c.also_bought.forEach(function (a) {
          row(tb, [{ text: a.gtin }, { text: a.name }, { text: a.households, num: 1 }, { text: a.lift.toFixed(2), num: 1 }]);
        });
        barChart($('chart'), c.also_bought.map(function (a) { return a.name || a.gtin; }),
                 [c.also_bought.map(function (a) { return a.lift; })], 'Lift of items also bought',
                 function (v) { return v.toFixed(2); });
        $('result').hidden = false;
      }).catch(function (e) { status(e.message); $('result').hidden = true; });
    }
    form.addEventListener('submit', function (ev) { ev.preventDefault(); run(); });
    $('moves-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var q = new URLSearchParams();
      q.set('offer', $('offer').value.trim());
      if ($('weeks').value) q.set('weeks', $('weeks').value);
      status('Comparing…');
      get('/v1/analyst/cohorts/offer?' + q.toString()).then(function (m) {
        status('');
        $('moves-title').textContent = m.title + ' (' + m.offer_id + ')';
        $('moves-households').textContent = shown(m.households);
        $('moves-note').textContent = m.households === null
          ? 'Withheld: fewer than k households redeemed it.'
          : 'Mean spend per household in the ' + m.weeks + ' weeks before and after redeeming.';
        barChart($('moves-chart'), ['before', 'after'], [[m.before_cents, m.after_cents]],
                 'Mean spend per household before and after', money);
        $('moves').hidden = false;
      }).catch(function (e) { status(e.message); $('moves').hidden = true; });
    });
    var p = new URLSearchParams(location.search);
    ['item', 'from', 'to', 'store'].forEach(function (k) { if (p.get(k)) $(k).value = p.get(k); });
    if (p.get('item')) run();
  }

  function offers() {
    status('Loading…');
    get('/v1/analyst/offers/funnel').then(function (rows) {
      status(rows.length ? '' : 'No offers yet.');
      var tb = $('funnel').tBodies[0];
      rows.forEach(function (o) {
        var rate = o.accepted && o.redeemed !== null ? (100 * o.redeemed / o.accepted).toFixed(1) + ' %' : '—';
        row(tb, [{ text: o.title + ' (' + o.offer_id + ')' }, { text: shown(o.accepted), num: 1 },
                 { text: shown(o.scanned), num: 1 }, { text: shown(o.redeemed), num: 1 }, { text: rate, num: 1 }]);
      });
      barChart($('chart'), rows.map(function (o) { return o.title; }),
               [rows.map(function (o) { return o.accepted; }), rows.map(function (o) { return o.scanned; }),
                rows.map(function (o) { return o.redeemed; })],
               'Accepted, scanned and redeemed per offer', function (v) { return String(v); });
      $('result').hidden = false;
    }).catch(function (e) { status(e.message); });
  }

  function nav() {
    var go = $('hh-go');
    if (go) go.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var v = $('hh-id').value.trim();
      if (v) location.href = '/analyst/households/' + encodeURIComponent(v);
    });
    var out = $('logout-btn');
    if (out) {
      get('/v1/analyst/me').then(function (me) { csrf = me.csrf; }).catch(function () {});
      out.addEventListener('click', function () {
        fetch('/analyst/logout', { method: 'POST', credentials: 'same-origin',
                                   headers: { 'X-CSRF-Token': csrf } })
          .then(function () { location.href = '/analyst/'; });
      });
    }
  }

  document.addEventListener('DOMContentLoaded', function () {
    var page = document.body.getAttribute('data-page');
    if (page === 'signin') {
      if (/[?&]denied=/.test(location.search))
        $('login-status').textContent = 'The token was not accepted.';
      return;
    }
    nav();
    if (page === 'household') household();
    else if (page === 'cohorts') cohorts();
    else if (page === 'offers') offers();
  });
}());
