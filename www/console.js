'use strict';
/* The staff console: sign in with a staff token (a session cookie comes
 * back, HttpOnly; the CSRF token is kept in memory and sent on every POST),
 * open conversations with the receipt beside each, reply, close. Text from
 * customers is put in with textContent only. */
(function () {
  var csrf = null;
  var timer = null;
  var boxes = {};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function money(c) { return c === null || c === undefined ? '—' : (c / 100).toFixed(2); }
  function post(url, body) {
    return fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf || '' },
      body: JSON.stringify(body || {})
    });
  }

  function signedIn(me) {
    csrf = me.csrf;
    document.getElementById('me').textContent = me.name + ' (' + (me.store === '*' ? 'all stores' : 'store ' + me.store) + ')';
    document.getElementById('login-form').hidden = true;
    document.getElementById('desk').hidden = false;
    refresh();
    timer = setInterval(refresh, 2000);
  }
  function signedOut() {
    csrf = null;
    if (timer) clearInterval(timer);
    document.getElementById('desk').hidden = true;
    document.getElementById('login-form').hidden = false;
  }

  function receiptBox(r) {
    var box = el('div', 'receipt');
    if (!r) { box.appendChild(el('p', 'hint', 'No receipt.')); return box; }
    box.appendChild(el('h3', null, 'Receipt, store ' + r.store));
    box.appendChild(el('p', 'meta', new Date(r.time).toLocaleString()));
    var t = el('table');
    var tb = el('tbody');
    r.items.forEach(function (it) {
      var tr = el('tr');
      tr.appendChild(el('td', 'item-name', it.name || ('Item ' + it.gtin)));
      tr.appendChild(el('td', 'num', String(it.qty)));
      tr.appendChild(el('td', 'num', money(it.price_cents)));
      tb.appendChild(tr);
    });
    t.appendChild(tb);
    box.appendChild(t);
    box.appendChild(el('p', 'total', 'Total ' + money(r.total_cents)));
    return box;
  }

  function convBox(c) {
    var sec = el('section', 'card conv');
    sec.setAttribute('data-id', String(c.id));
    var chat = el('div', 'chat');
    chat.appendChild(el('h3', null, 'Conversation ' + c.id));
    var ol = el('ol', 'messages');
    chat.appendChild(ol);
    var form = el('form', 'reply-form');
    var lab = el('label', null, 'Reply');
    var ta = el('textarea', 'reply-input');
    ta.id = 'reply-' + c.id;
    ta.maxLength = 1000;
    ta.rows = 2;
    lab.setAttribute('for', ta.id);
    var send = el('button', 'reply-send', 'Send reply');
    send.type = 'submit';
    var close = el('button', 'secondary close-btn', 'Close conversation');
    close.type = 'button';
    var st = el('p', 'reply-status');
    form.appendChild(lab); form.appendChild(ta); form.appendChild(send);
    form.appendChild(close); form.appendChild(st);
    chat.appendChild(form);
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (!ta.value.trim()) return;
      post('/v1/conversations/' + c.id + '/messages', { body: ta.value }).then(function (res) {
        if (res.status === 401) return signedOut();
        if (!res.ok) return res.json().then(function (j) { st.textContent = j.detail; });
        ta.value = '';
        st.textContent = 'Sent.';
        refresh();
      });
    });
    close.addEventListener('click', function () {
      post('/v1/conversations/' + c.id + '/close').then(function () { refresh(); });
    });
    sec.appendChild(chat);
    sec.appendChild(receiptBox(c.receipt));
    if (c.enrichment) {
      var f = c.enrichment;
      sec.appendChild(el('p', 'facts',
        'Household: ' + (f.last_visit ? 'last visit ' + new Date(f.last_visit).toLocaleDateString() + ', ' : '') +
        f.visits_90d + ' visits in 90 days, spend ' + f.spend_band +
        (f.top_categories.length ? ', mostly ' + f.top_categories.join(', ') : '') +
        ', ' + f.offers_redeemed + ' offers redeemed'));
    }
    return { sec: sec, ol: ol };
  }

  function render(list) {
    var root = document.getElementById('conversations');
    var keep = {};
    document.getElementById('empty').hidden = list.length > 0;
    list.forEach(function (c) {
      keep[c.id] = true;
      var b = boxes[c.id];
      if (!b) { b = boxes[c.id] = convBox(c); root.appendChild(b.sec); }
      b.ol.textContent = '';
      c.messages.forEach(function (m) {
        var li = el('li', 'msg ' + m.author);
        li.appendChild(el('span', 'who', m.author === 'staff' ? 'Store' : 'Customer'));
        li.appendChild(el('span', 'msg-body', m.body));
        b.ol.appendChild(li);
      });
    });
    Object.keys(boxes).forEach(function (id) {
      if (!keep[id]) { boxes[id].sec.remove(); delete boxes[id]; }
    });
  }

  function refresh() {
    fetch('/v1/conversations?state=open', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (res) {
        if (res.status === 401) { signedOut(); return null; }
        return res.json();
      })
      .then(function (j) { if (j) render(j.conversations); })
      .catch(function () {});
  }

  document.getElementById('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var tok = document.getElementById('token');
    fetch('/v1/console/login', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: tok.value })
    }).then(function (res) {
      return res.json().then(function (j) {
        if (!res.ok) { document.getElementById('login-status').textContent = j.detail; return; }
        tok.value = '';
        signedIn(j);
      });
    });
  });
  document.getElementById('logout-btn').addEventListener('click', function () {
    post('/v1/console/logout').then(signedOut);
  });

  fetch('/v1/console/me', { credentials: 'same-origin', cache: 'no-store' })
    .then(function (res) { return res.ok ? res.json() : null; })
    .then(function (me) { if (me) signedIn(me); else signedOut(); })
    .catch(signedOut);
})();
