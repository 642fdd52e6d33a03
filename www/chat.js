'use strict';
/* The visitor chat: a conversation of kind visitor, named by the uid and
 * sig of the page's own query. Messages are put in with textContent, so a
 * message can never become markup. */
(function () {
  var params = new URLSearchParams(location.search);
  var auth = 'uid=' + encodeURIComponent(params.get('uid') || '') +
    '&sig=' + encodeURIComponent(params.get('sig') || '');
  var base = '/v1/chat/messages?' + auth;
  var last = 0;
  var seen = {};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function status(text) { document.getElementById('status').textContent = text; }

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
    fetch(base + '&after=' + last + (wait ? '' : '&wait=0'), { cache: 'no-store' })
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
    fetch(base, {
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

  poll(false);
})();
