'use strict';
/* A visitor page: asks for a visitor id once (kept in this browser's
 * storage), then shows the chat and SMS links that carry it. */
(function () {
  function status(text) { document.getElementById('status').textContent = text; }
  function json(res) { if (!res.ok) throw new Error(res.status); return res.json(); }

  function visitor() {
    var saved = null;
    try { saved = JSON.parse(localStorage.getItem('pos_visitor') || 'null'); } catch (e) { saved = null; }
    if (saved && saved.uid && saved.sig) return Promise.resolve(saved);
    return fetch('/v1/visitors', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })
      .then(json)
      .then(function (v) {
        try { localStorage.setItem('pos_visitor', JSON.stringify(v)); } catch (e) { /* private mode */ }
        return v;
      });
  }

  visitor()
    .then(function (v) {
      return fetch('/v1/links?uid=' + encodeURIComponent(v.uid) + '&sig=' + encodeURIComponent(v.sig),
        { cache: 'no-store' }).then(json);
    })
    .then(function (l) {
      var chat = document.getElementById('chat-link');
      chat.href = l.chat;
      chat.hidden = false;
      if (l.sms) {
        var sms = document.getElementById('sms-link');
        sms.href = l.sms;
        sms.hidden = false;
      }
    })
    .catch(function () { status('The store cannot be reached right now.'); });
})();
