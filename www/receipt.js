'use strict';
/* The receipt page: the basket from /v1/receipts/{token} and a chat with
 * the store. Everything from the server is put in with textContent, so a
 * message can never become markup. */
(function () {
  var token = location.pathname.split('/').pop();
  var base = '/v1/receipts/' + encodeURIComponent(token);
  var last = 0;
  var seen = {};

  function money(cents) {
    return cents === null || cents === undefined ? '—' : (cents / 100).toFixed(2);
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function status(text) { document.getElementById('status').textContent = text; }

  function showReceipt(r) {
    document.getElementById('store').textContent = 'Store ' + r.store;
    var t = document.getElementById('time');
    t.textContent = new Date(r.time).toLocaleString();
    t.setAttribute('datetime', r.time);
    var body = document.querySelector('#items tbody');
    r.items.forEach(function (it) {
      var tr = el('tr', 'item');
      tr.appendChild(el('td', 'item-name', it.name || ('Item ' + it.gtin)));
      tr.appendChild(el('td', 'num item-qty', String(it.qty)));
      tr.appendChild(el('td', 'num item-price', money(it.price_cents)));
      body.appendChild(tr);
    });
    document.getElementById('total').textContent =
      money(r.total_cents) + (r.total_complete ? '' : ' +');
    if (r.offers.length) {
      var ul = document.getElementById('offers');
      r.offers.forEach(function (o) { ul.appendChild(el('li', null, o.title)); });
      document.getElementById('offers-box').hidden = false;
    }
  }

  function addMessages(list) {
    var ol = document.getElementById('messages');
    list.forEach(function (m) {
      if (seen[m.id]) return;
      seen[m.id] = true;
      var li = el('li', 'msg ' + m.author);
      li.appendChild(el('span', 'who', m.author === 'staff' ? 'Store' : 'You'));
      li.appendChild(el('span', 'msg-body', m.body));
      ol.appendChild(li);
      if (m.id > last) last = m.id;
    });
  }

  function poll(wait) {
    fetch(base + '/messages?after=' + last + (wait ? '' : '&wait=0'), { cache: 'no-store' })
      .then(function (res) { if (!res.ok) throw new Error(res.status); return res.json(); })
      .then(function (j) { addMessages(j.messages); poll(true); })
      .catch(function () { setTimeout(function () { poll(true); }, 3000); });
  }

  document.getElementById('msg-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var input = document.getElementById('msg-input');
    var text = input.value;
    if (!text.trim()) return;
    status('Sending…');
    fetch(base + '/messages', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ body: text })
    }).then(function (res) {
      return res.json().then(function (j) {
        if (!res.ok) throw new Error(j.detail || 'not sent');
        input.value = '';
        status('Sent.');
      });
    }).catch(function (err) { status('Not sent: ' + err.message); });
  });

  fetch(base, { cache: 'no-store' })
    .then(function (res) { if (!res.ok) throw new Error(res.status); return res.json(); })
    .then(function (r) { showReceipt(r); poll(false); })
    .catch(function () { document.getElementById('receipt-title').textContent = 'Receipt not found'; });
})();
