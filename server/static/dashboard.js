// Ringback dashboard. No inline script or handler anywhere (the pages' CSP allows none): the small
// behaviours are wired here by data attributes.
(function () {
  'use strict';
  document.addEventListener('change', function (event) {
    var el = event.target;
    if (el && el.hasAttribute && el.hasAttribute('data-autosubmit') && el.form) el.form.submit();
  });
  document.addEventListener('click', function (event) {
    var el = event.target;
    if (el && el.hasAttribute && el.hasAttribute('data-select-all')) el.select();
  });
  document.addEventListener('submit', function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();

// The live board follows its sites over a WebSocket. Each message updates the lead's status in place at
// once; the panels are then fetched again (debounced), never the whole page.
(function () {
  'use strict';
  var root = document.getElementById('live');
  if (!root || !window.WebSocket) return;
  var state = document.getElementById('live-state');
  var timer = null;
  var retry = 1000;

  function label(status) { return String(status).replace(/_/g, ' '); }

  function setState(name, text) {
    if (!state) return;
    state.setAttribute('data-state', name);
    state.textContent = text;
  }

  function refresh() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch(root.getAttribute('data-panels'), { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { root.innerHTML = html; })
        .catch(function () { setState('stale', 'reconnecting…'); });
    }, 250);
  }

  function apply(msg) {
    var rows = root.querySelectorAll('[data-lead="' + msg.id + '"] [data-status]');
    for (var i = 0; i < rows.length; i++) {
      rows[i].textContent = label(msg.status);
      rows[i].className = 'status s-' + msg.status + ' changed';
    }
    refresh();
  }

  function connect() {
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + root.getAttribute('data-ws');
    var ws = new WebSocket(url);
    ws.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; /* a malformed message is dropped */ }
      if (msg.type === 'ready') { retry = 1000; setState('live', 'live'); refresh(); return; }
      if (msg.id) apply(msg);
    };
    ws.onclose = function () {
      setState('stale', 'reconnecting…');
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }
  connect();
})();
