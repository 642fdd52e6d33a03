'use strict';
/* The phone's vendor messages: the list from /v1/devices/me/messages, the
 * options of a reschedule offer as buttons (POST /v1/messages/{id}/choose),
 * and "Ask a person" (POST /v1/messages/{id}/support). The page is opened
 * as /messages#t=<device token>: the fragment never reaches a server or a
 * log; it is traded once for an HttpOnly cookie and wiped from the address
 * bar. Everything from the server is put in with textContent, so a vendor's
 * text can never become markup. */
(function () {
  var KINDS = {
    recall: 'Recall', delay: 'Delay', cancel: 'Cancelled', reschedule: 'New time needed',
    confirmation: 'Confirmed', reschedule_failed: 'Could not reschedule'
  };
  var STATES = {
    options_pending: 'Asking for new times…', open: '', chosen: 'Booking…',
    done: 'Rebooked', failed: 'Not rebooked', no_options: 'No times offered'
  };
  var notes = {};
  var busy = false;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function status(text) { document.getElementById('status').textContent = text; }
  function when(iso) {
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }
  function call(method, path, body) {
    return fetch(path, {
      method: method,
      cache: 'no-store',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (j) {
        if (!res.ok) {
          var err = new Error(j.detail || j.error || String(res.status));
          err.status = res.status;
          throw err;
        }
        return j;
      });
    });
  }

  function choose(m, opt) {
    busy = true;
    status('Booking ' + when(opt.at) + '…');
    call('POST', '/v1/messages/' + encodeURIComponent(m.id) + '/choose', { option: opt.id })
      .then(function () { status(''); })
      .catch(function (err) { status('Not booked: ' + err.message); })
      .then(function () { busy = false; load(); });
  }

  function support(m) {
    busy = true;
    call('POST', '/v1/messages/' + encodeURIComponent(m.id) + '/support', {})
      .then(function () { notes[m.id] = 'A person from the store will get back to you.'; status(''); })
      .catch(function (err) { status('Could not reach a person: ' + err.message); })
      .then(function () { busy = false; load(); });
  }

  function render(list) {
    var ol = document.getElementById('vmessages');
    while (ol.firstChild) ol.removeChild(ol.firstChild);
    document.getElementById('empty').hidden = list.length > 0;
    list.forEach(function (m) {
      var li = el('li', 'vmsg ' + m.kind);
      li.setAttribute('data-id', String(m.id));
      li.setAttribute('data-kind', m.kind);
      var head = el('div', 'vmsg-head');
      head.appendChild(el('span', 'vmsg-kind', KINDS[m.kind] || m.kind));
      head.appendChild(el('span', 'vmsg-vendor', m.vendor || ''));
      li.appendChild(head);
      li.appendChild(el('p', 'vmsg-text', m.text));
      if (m.activity) {
        li.appendChild(el('p', 'vmsg-activity',
          'Your ' + m.activity.kind + ': ' + when(m.activity.at)));
      }
      var st = STATES[m.state];
      if (st) li.appendChild(el('p', 'vmsg-state ' + m.state, st));
      if (m.state === 'open' && m.options && m.options.length) {
        li.appendChild(el('p', 'vmsg-pick', 'Pick a new time:'));
        var box = el('div', 'vmsg-options');
        m.options.forEach(function (o) {
          var b = el('button', 'vmsg-option', when(o.at));
          b.type = 'button';
          b.setAttribute('data-option', o.id);
          b.addEventListener('click', function () { choose(m, o); });
          box.appendChild(b);
        });
        li.appendChild(box);
      }
      if (m.chosen) {
        var picked = (m.options || []).filter(function (o) { return o.id === m.chosen; })[0];
        li.appendChild(el('p', 'vmsg-chosen', 'You picked ' + (picked ? when(picked.at) : m.chosen) + '.'));
      }
      if (m.activity && m.kind !== 'confirmation' && m.state !== 'done') {
        var ask = el('button', 'secondary vmsg-support', 'Ask a person');
        ask.type = 'button';
        ask.addEventListener('click', function () { support(m); });
        li.appendChild(ask);
      }
      if (notes[m.id]) li.appendChild(el('p', 'vmsg-note', notes[m.id]));
      ol.appendChild(li);
    });
  }

  function load() {
    if (busy) return;
    call('GET', '/v1/devices/me/messages')
      .then(function (j) { render(j.messages); })
      .catch(function (err) {
        status(err.status === 401 ? 'Open this page from the link on your phone.' :
          'Messages cannot be loaded right now.');
      });
  }

  function start() {
    var m = /^#t=([A-Za-z0-9_-]{16,128})$/.exec(location.hash);
    if (!m) return Promise.resolve();
    /* The token leaves the address bar (and the history) before anything
     * else happens. */
    history.replaceState(null, '', location.pathname);
    return fetch('/v1/devices/me/session', {
      method: 'POST', cache: 'no-store', credentials: 'same-origin',
      headers: { 'Authorization': 'Bearer ' + m[1] }
    }).then(function (res) { if (!res.ok) throw new Error(res.status); });
  }

  start()
    .catch(function () { status('This link is not valid any more.'); })
    .then(function () { load(); setInterval(load, 3000); });
})();
