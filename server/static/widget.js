/* Ringback widget: <script async src="https://HOST/widget.js" data-site="SITE_KEY"></script> */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.Ringback && window.Ringback.loaded) return;
  var site = script.getAttribute('data-site');
  var api = script.getAttribute('data-api') || new URL(script.src).origin;
  var queue = (window.Ringback && window.Ringback.q) || [];
  var LABELS = {
    queued: 'Waiting for a free manager…',
    scheduled: 'We will call you at {time}.',
    calling_manager: 'Calling a manager…',
    calling_visitor: 'A manager is ready: your phone will ring now.',
    connected: 'Connected. Enjoy the call!',
    completed: 'Call finished. Thank you!',
    missed: 'Sorry, nobody could take your call. We will get back to you.',
    unreachable: 'We could not reach you. We will try to get in touch again.',
    cancelled: 'Request cancelled.',
    failed: 'Sorry, the call could not be placed.',
    received: 'Thank you! Your message was received.'
  };
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text) node.textContent = text;
    return node;
  }
  function start() {
    var host = el('div', { 'data-ringback': '' });
    var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
    var style = el('style');
    style.textContent = ':host{all:initial}*{box-sizing:border-box;font:16px/1.4 system-ui,sans-serif}' +
      '.btn{position:fixed;right:20px;bottom:20px;z-index:2147483647;border:0;border-radius:24px;' +
      'padding:12px 18px;background:#0b6e4f;color:#fff;cursor:pointer}' +
      '.panel{position:fixed;right:20px;bottom:76px;z-index:2147483647;width:300px;max-width:calc(100vw - 40px);' +
      'background:#fff;color:#111;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);padding:16px}' +
      'label{display:block;margin:8px 0 4px}input{width:100%;padding:8px;border:1px solid #888;border-radius:6px}' +
      '.err{color:#b00020;min-height:1.2em;font-size:14px}.status{margin-top:8px}';
    var button = el('button', { 'class': 'btn', type: 'button', 'aria-expanded': 'false' }, 'Call me back');
    var panel = el('div', { 'class': 'panel', role: 'dialog', 'aria-label': 'Call me back', hidden: '' });
    var form = el('form', { novalidate: '' });
    form.appendChild(el('label', { 'for': 'rb-phone' }, 'Your phone number'));
    var phone = el('input', { id: 'rb-phone', name: 'phone', type: 'tel', autocomplete: 'tel', required: '' });
    form.appendChild(phone);
    var error = el('div', { 'class': 'err', id: 'rb-error', 'aria-live': 'polite' });
    form.appendChild(error);
    var submit = el('button', { 'class': 'btn', type: 'submit', style: 'position:static;width:100%' }, 'Call me now');
    form.appendChild(submit);
    var status = el('div', { 'class': 'status', role: 'status', 'aria-live': 'polite' });
    panel.appendChild(form);
    panel.appendChild(status);
    root.appendChild(style);
    root.appendChild(button);
    root.appendChild(panel);
    document.body.appendChild(host);

    function show(update) {
      var text = LABELS[update.status] || update.status;
      if (update.scheduled_for) text = text.replace('{time}', new Date(update.scheduled_for).toLocaleString());
      status.textContent = text;
      status.setAttribute('data-status', update.status);
    }
    function follow(lead) {
      var url = api.replace(/^http/, 'ws') + '/api/v1/callbacks/' + lead.id + '/live?token=' + encodeURIComponent(lead.token);
      try {
        var ws = new WebSocket(url);
        ws.onmessage = function (e) { show(JSON.parse(e.data)); };
      } catch (e) { /* status stays as last shown */ }
    }
    function open() { panel.hidden = false; button.setAttribute('aria-expanded', 'true'); phone.focus(); }
    function close() { panel.hidden = true; button.setAttribute('aria-expanded', 'false'); }
    button.addEventListener('click', function () { panel.hidden ? open() : close(); });
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      error.textContent = '';
      var params = new URLSearchParams(location.search), utm = {};
      ['source', 'medium', 'campaign', 'term', 'content'].forEach(function (k) {
        var v = params.get('utm_' + k);
        if (v) utm[k] = v;
      });
      var body = {
        site: site, phone: phone.value, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
        page_url: location.href, referrer: document.referrer || undefined, utm: utm
      };
      submit.disabled = true;
      fetch(api + '/api/v1/callbacks', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body)
      }).then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); })
        .then(function (res) {
          submit.disabled = false;
          if (!res.ok) { error.textContent = res.data.error.message; return; }
          form.hidden = true;
          show(res.data);
          follow(res.data);
        })
        .catch(function () { submit.disabled = false; error.textContent = 'Network error, please try again.'; });
    });
    window.Ringback = { loaded: true, open: open, close: close };
    queue.forEach(function (call) { try { window.Ringback[call[0]].apply(null, call.slice(1)); } catch (e) {} });
  }
  try {
    if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);
  } catch (e) { /* never break the host page */ }
})();
