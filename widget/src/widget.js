/*! Ringback widget | <script async src="https://HOST/widget.js" data-site="SITE_KEY"></script> */
// One IIFE and one global (window.Ringback). Everything lives in a shadow root, no style reaches the
// host's document, and every entry point is wrapped so that nothing is ever thrown into the host page.
// Texts, colours and triggers come from the site's config; this file holds no wording of its own.
(function (w, d) {
  'use strict';
  var me = d.currentScript, old = w.Ringback;
  if (!me || old && old.v) return; // a second copy of the tag: the first stays in charge
  var CSS = '__CSS__';
  var ENDED = ['completed', 'missed', 'unreachable', 'cancelled', 'rejected', 'failed', 'received'];
  var WAITING = ['scheduled', 'queued', 'calling_manager']; // the visitor may still cancel
  var site = me.getAttribute('data-site'), allowed = !me.hasAttribute('data-consent-required');
  var loadedAt = Date.now(), handlers = {}, store = {}, sess = {}, F = {};
  var api, cfg, T, mode, host, root, btn, panel, form, sub, general, status, again, stop, hp;
  var isOpen, wantOpen, back, busy, over, ver, stopping;

  function noop() {}
  function safe(fn) {
    return function () { try { return fn.apply(this, arguments); } catch (e) { /* never into the host */ } };
  }
  function el(tag, attrs, text, parent) {
    var n = d.createElement(tag);
    for (var k in attrs) n.setAttribute(k, attrs[k]);
    if (text) n.textContent = text;
    if (parent) parent.appendChild(n);
    return n;
  }

  // First-party storage only, and nothing at all before consent where the tag asks for it.
  function read(kind) {
    try { return JSON.parse(w[kind].getItem('ringback')) || {}; } catch (e) { return {}; }
  }
  function save() {
    if (allowed) try {
      localStorage.setItem('ringback', JSON.stringify(store));
      sessionStorage.setItem('ringback', JSON.stringify(sess));
    } catch (e) { /* private mode or storage full: keep going in memory */ }
  }
  function rid() {
    var s = '', a = crypto.getRandomValues(new Uint8Array(12));
    for (var i = 0; i < 12; i++) s += (a[i] + 256).toString(16).slice(1);
    return s;
  }
  // A visit starts when this tab's session has none: count it, and keep where it came from.
  function visit() {
    if (allowed) { store = read('localStorage'); sess = read('sessionStorage'); }
    if (sess.l) return;
    var q = new URLSearchParams(location.search), now = new Date().toISOString(), ref = d.referrer, u = {}, c = '';
    ['source', 'medium', 'campaign', 'term', 'content'].forEach(function (k) {
      if (q.get('utm_' + k)) u[k] = q.get('utm_' + k).slice(0, 200);
    });
    ['gclid', 'fbclid', 'yclid', 'msclkid'].forEach(function (k) {
      if (!c && q.get(k)) c = (k + '=' + q.get(k)).slice(0, 300);
    });
    if (ref && new URL(ref).host == location.host) ref = '';
    sess = { l: location.href.slice(0, 2000), r: ref.slice(0, 2000), u: u, c: c };
    var touch = {
      source: u.source, medium: u.medium, campaign: u.campaign, term: u.term, content: u.content,
      referrer: ref, landing_page: sess.l, click_id: c, at: now
    };
    store.id = store.id || rid();
    store.n = (store.n || 0) + 1;
    store.f = store.f || now;
    if (!store.ft || u.source || ref || c) store.lt = touch; // a direct visit keeps the last real source
    store.ft = store.ft || touch;
    save();
  }

  function on(name, fn) {
    if (typeof fn == 'function') (handlers[name] = handlers[name] || []).push(fn);
  }
  function emit(name, data) {
    (handlers[name] || []).forEach(function (fn) { try { fn(data); } catch (e) { /* the host's bug */ } });
    try { if (w.dataLayer && w.dataLayer.push) w.dataLayer.push({ event: 'ringback.' + name, ringback: data }); } catch (e) { /* ignore */ }
  }

  function start() {
    safe(visit)();
    api = (me.getAttribute('data-api') || new URL(me.src).origin).replace(/\/$/, '');
    config().then(safe(render)).catch(noop);
  }
  // The site's config for this visitor: texts in their language, slots in their own time zone (so that
  // every time offered is one the server accepts from them), and a fresh form token.
  function config() {
    var lang = me.getAttribute('data-lang') || navigator.language || '', zone = tz();
    return fetch(api + '/api/v1/sites/' + encodeURIComponent(site) + '/config?lang=' + encodeURIComponent(lang) +
      (zone ? '&timezone=' + encodeURIComponent(zone) : ''))
      .then(function (r) { if (!r.ok) throw r; return r.json(); });
  }
  function match(list) {
    return (list || []).some(function (p) { try { return new RegExp(p).test(location.pathname); } catch (e) { return false; } });
  }
  function colour(v) { return /^#[\da-f]{3,8}$/i.test(v) ? v : '#000'; }
  function sheet(css) {
    try { var s = new CSSStyleSheet(); s.replaceSync(css); root.adoptedStyleSheets = [s]; } catch (e) { el('style', 0, css, root); }
  }
  function field(name, label, tag, attrs, cls) {
    var box = el('div', { 'class': cls || 'f' }, 0, form), id = 'rb-' + name;
    var lab = el('label', { 'for': id }, cls ? 0 : label, box);
    var input = el(tag, { id: id, name: name, 'aria-describedby': id + '-e' });
    for (var k in attrs) input.setAttribute(k, attrs[k]);
    if (cls) { lab.appendChild(input); lab.appendChild(d.createTextNode(label)); } else box.appendChild(input);
    el('span', { 'class': 'e', id: id + '-e' }, 0, box);
    return F[name] = input;
  }

  function render(c) {
    cfg = c; T = c.texts;
    if (match(c.hide_on)) return;
    var k = c.colors, side = c.position == 'bottom-left' ? 'left' : 'right';
    var pick = { A: k.accent, T: k.accent_text, P: k.panel, X: k.text };
    host = el('ringback-widget');
    root = host.attachShadow({ mode: 'open' });
    sheet(CSS.replace(/\$([ATPXS])/g, function (m, x) { return x == 'S' ? side : colour(pick[x]); }));
    btn = el('button', { 'class': 'b', type: 'button', 'aria-haspopup': 'dialog', 'aria-expanded': 'false', dir: c.dir, lang: c.language }, 0, root);
    var ns = 'http://www.w3.org/2000/svg', svg = d.createElementNS(ns, 'svg'), path = d.createElementNS(ns, 'path');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    path.setAttribute('d', 'M6.6 10.8a15 15 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.3c1.1.4 2.3.6 3.6.6a1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.3.2 2.5.6 3.6a1 1 0 0 1-.3 1z');
    svg.appendChild(path);
    btn.appendChild(svg);
    el('span', 0, T.button, btn);
    panel = el('div', { 'class': 'p', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'rb-t', dir: c.dir, lang: c.language, hidden: '' }, 0, root);
    el('h2', { id: 'rb-t' }, T.title, panel);
    el('button', { 'class': 'x', type: 'button', 'aria-label': T.close }, '×', panel).onclick = safe(close);
    form = el('form', { novalidate: '' }, 0, panel);
    mode = c.call_now ? 'now' : (c.slots || []).length ? 'later' : 'message';
    el('p', 0, T['intro_' + mode], form);
    if (mode == 'later') {
      field('scheduled_for', T.time, 'select');
      c.slots.forEach(function (s) { el('option', { value: s.start }, s.label || when(s.start), F.scheduled_for); });
    }
    field('phone', T.phone, 'input', { type: 'tel', autocomplete: 'tel', inputmode: 'tel', required: '', placeholder: c.phone_example || '' });
    field('name', T.name, 'input', { autocomplete: 'name', maxlength: '200' });
    if (mode == 'message') field('message', T.message, 'textarea', { required: '', maxlength: '2000' });
    if (c.consent_required) field('consent', T.consent, 'input', { type: 'checkbox', required: '' }, 'c');
    // The honeypot: out of sight, out of the tab order; only a bot fills it in.
    hp = el('input', { 'class': 'hp', name: 'website', tabindex: '-1', autocomplete: 'off', 'aria-hidden': 'true' }, 0, form);
    general = el('p', { 'class': 'e', role: 'alert' }, 0, form);
    sub = el('button', { 'class': 's', type: 'submit' }, T['submit_' + mode], form);
    status = el('p', { 'class': 't', role: 'status', 'aria-live': 'polite' }, 0, panel);
    again = el('button', { 'class': 's', type: 'button', hidden: '' }, T.again, panel);
    again.onclick = safe(reset);
    stop = el('button', { 'class': 'k', type: 'button', hidden: '' }, T.cancel, panel);
    stop.onclick = safe(cancel);
    form.onsubmit = safe(submit);
    btn.onclick = safe(function () { if (isOpen) close(); else open(); });
    d.addEventListener('keydown', safe(keys), true);
    // Appended to <html>, after <body>, so host selectors such as `body > :last-child` keep their target.
    d.documentElement.appendChild(host);
    if (sess.k) { form.hidden = true; follow(sess.k); } // a request made on an earlier page of this visit
    triggers(c.triggers || {});
    if (wantOpen) open();
  }

  function first() {
    return form.hidden ? panel.querySelector('.x') : form.querySelector('select,input,textarea');
  }
  function open(auto) {
    if (!panel) { wantOpen = 1; return; }
    if (isOpen) return;
    isOpen = 1;
    back = root.activeElement || d.activeElement;
    panel.hidden = false;
    btn.setAttribute('aria-expanded', 'true');
    if (!auto) first().focus(); // opening by itself never steals the visitor's focus
    emit('opened', { auto: !!auto });
  }
  function close() {
    if (!isOpen) return;
    isOpen = 0;
    var inside = root.activeElement;
    panel.hidden = true;
    btn.setAttribute('aria-expanded', 'false');
    if (inside) (back && back != d.body ? back : btn).focus();
    emit('closed', {});
  }
  function keys(e) {
    if (!isOpen) return;
    if (e.key == 'Escape') return close();
    var now = root.activeElement;
    if (e.key != 'Tab' || !now) return;
    var f = [].filter.call(panel.querySelectorAll('button,input,select,textarea'), function (x) {
      return x.tabIndex >= 0 && !x.disabled && x.getClientRects().length;
    });
    var a = f[0], z = f[f.length - 1];
    if (e.shiftKey ? now == a : now == z) { e.preventDefault(); (e.shiftKey ? z : a).focus(); }
  }
  function triggers(t) {
    var auto = safe(function () {
      if (!allowed || isOpen || store.done || match(cfg.exclude) || Date.now() - (store.a || 0) < t.cap_hours * 36e5) return;
      store.a = Date.now();
      save();
      open(1);
    });
    if (t.after_seconds) setTimeout(auto, t.after_seconds * 1e3);
    if (t.exit_intent && matchMedia('(hover:hover) and (pointer:fine)').matches) {
      d.addEventListener('mouseout', function (e) { if (!e.relatedTarget && e.clientY <= 0) auto(); });
    }
  }

  function tz() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return undefined; }
  }
  function when(iso) {
    try {
      return iso ? new Date(iso).toLocaleString(cfg.language, {
        weekday: 'short', day: 'numeric', month: 'short', hour: 'numeric', minute: '2-digit', timeZoneName: 'short'
      }) : '';
    } catch (e) { return iso; }
  }
  function say(text) { status.textContent = text; }
  function submit(e) {
    e.preventDefault();
    if (busy) return;
    [].forEach.call(root.querySelectorAll('.e'), function (x) { x.textContent = ''; });
    for (var k in F) F[k].removeAttribute('aria-invalid');
    var body = {
      site: site, phone: F.phone.value, name: F.name.value.trim() || undefined, timezone: tz(),
      page_url: location.href.slice(0, 2000), referrer: sess.r || undefined, utm: sess.u, visitor_id: store.id,
      visit: {
        visits: store.n, first_seen: store.f, landing_page: sess.l, language: navigator.language,
        click_id: sess.c || undefined, first_touch: store.ft, last_touch: store.lt
      }
    };
    if (F.consent) body.consent = F.consent.checked;
    if (F.scheduled_for) body.scheduled_for = F.scheduled_for.value;
    if (F.message) body.message = F.message.value;
    if (cfg.form_token) body.form_token = cfg.form_token;
    if (hp.value) body.hp = hp.value;
    busy = 1;
    sub.disabled = true;
    say(T.sending);
    later(body, 1).catch(noop);
  }
  // A site that checks for bots refuses forms sent sooner than a human could fill them in.
  function later(body, renew) {
    var wait = loadedAt + (cfg.min_fill_seconds || 0) * 1e3 - Date.now();
    if (wait <= 0) return post(body, renew);
    return new Promise(function (go) { setTimeout(go, wait); }).then(function () { return post(body, renew); });
  }
  // The form token has expired (the page stayed open for hours) or was used (the form sent again, or from
  // another tab): fetch a new one and send again, once.
  function renewed(body, err) {
    return config().then(function (c) {
      cfg.form_token = body.form_token = c.form_token;
      cfg.min_fill_seconds = c.min_fill_seconds;
      loadedAt = Date.now();
      return later(body, 0);
    }, function () { fail(err); });
  }
  function post(body, renew) {
    return fetch(api + '/api/v1/callbacks?lang=' + cfg.language, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(safe(function (x) {
        var j = x[1], err = j.error || {};
        // A zone the server does not know (some systems say Etc/Unknown) is not the visitor's to fix:
        // without it, the server takes the zone from the phone number.
        if (err.field == 'timezone' && body.timezone) { delete body.timezone; return post(body, renew); }
        if (err.field == 'form_token' && /^(expired|form_token_used)$/.test(err.code) && renew) return renewed(body, err);
        if (!x[0]) return fail(err);
        store.done = Date.now();
        sess.k = { id: j.id, token: j.token };
        save();
        var had = root.activeElement;
        form.hidden = true;
        if (had) panel.querySelector('.x').focus(); // the focused field is gone: keep the keyboard in the panel
        emit('submitted', { id: j.id, status: j.status, mode: mode });
        follow(sess.k);
        show(j);
      }), function () { fail({}); })
      .then(function () { busy = 0; sub.disabled = false; });
  }
  // The server's message goes next to the field it names; anything else under the form.
  function fail(err) {
    var f = F[err.field], msg = err.message || T.network;
    say('');
    if (f) {
      f.setAttribute('aria-invalid', 'true');
      root.getElementById(f.id + '-e').textContent = msg;
      f.focus();
    } else general.textContent = msg;
  }

  function follow(k) {
    var path = '/api/v1/callbacks/' + k.id, q = '?token=' + encodeURIComponent(k.token) + '&lang=' + cfg.language;
    over = 0;
    ver = 0;
    function poll() {
      if (over) return;
      fetch(api + path + q).then(function (r) { return r.json(); })
        .then(safe(function (j) { if (j.status) show(j); else if (sess.k == k) reset(); }))
        .catch(noop)
        .then(function () { if (!over) setTimeout(poll, status.getAttribute('data-status') == 'scheduled' ? 6e4 : 3e3); });
    }
    try {
      var ws = new WebSocket(api.replace(/^http/, 'ws') + path + '/live' + q);
      ws.onmessage = safe(function (e) { show(JSON.parse(e.data)); });
      ws.onclose = function () { if (!over) setTimeout(poll, 1e3); }; // fall back to asking now and then
    } catch (e) { poll(); }
  }
  function show(u) {
    if (!sess.k || u.id != sess.k.id || u.version < ver) return;
    ver = u.version;
    var s = u.status, n = u.managers > 1 && s == 'calling_manager';
    // Just accepted, nobody ahead: it is being handed to a manager, not waiting for one.
    var t = T[s == 'scheduled' && u.attempt > 1 ? 'retry' : s == 'queued' && !u.queue_position ? 'accepted' : n ? 'calling_step' : s] || s;
    t = t.replace('{time}', when(u.scheduled_for)).replace('{n}', u.step).replace('{of}', u.managers);
    if (u.queue_position) t += ' ' + T.queue_position.replace('{n}', u.queue_position);
    if (t == status.textContent) return;
    say(t);
    status.setAttribute('data-status', s);
    if (WAITING.indexOf(s) < 0 && root.activeElement == stop) panel.querySelector('.x').focus();
    stop.hidden = WAITING.indexOf(s) < 0;
    if (ENDED.indexOf(s) >= 0) {
      over = 1;
      delete sess.k;
      save();
      again.hidden = /completed|received|cancelled/.test(s);
    }
    emit('status', { id: u.id, status: s, text: t });
  }
  // The visitor changed their mind: calls being placed are hung up, and the status says it is cancelled.
  function cancel() {
    var k = sess.k;
    if (!k || stopping) return;
    stopping = 1; // not `disabled`: a disabled button loses the keyboard focus
    fetch(api + '/api/v1/callbacks/' + k.id + '?token=' + encodeURIComponent(k.token) + '&lang=' + cfg.language, { method: 'DELETE' })
      .then(function (r) { return r.json(); })
      .then(safe(function (j) { if (j.status) show(j); else say((j.error || {}).message || T.network); }))
      .catch(function () { say(T.network); })
      .then(function () { stopping = 0; });
  }
  function reset() {
    over = 1;
    delete sess.k;
    save();
    form.hidden = false;
    again.hidden = stop.hidden = true;
    say('');
    status.removeAttribute('data-status');
    if (isOpen) first().focus();
  }

  try {
    var A = {
      open: function () { open(); },
      close: close,
      on: on,
      // The host's consent banner calls this; only then is anything kept in storage.
      consent: function () { if (!allowed) { var k = sess.k; allowed = 1; visit(); sess.k = sess.k || k; save(); } }
    };
    var R = function (name) {
      try { return A[name] && A[name].apply(null, [].slice.call(arguments, 1)); } catch (e) { /* ignore */ }
    };
    for (var name in A) R[name] = R.bind(null, name);
    R.v = 1;
    w.Ringback = R;
    // Calls queued by the stub before this file arrived: window.Ringback = function () { (Ringback.q = Ringback.q || []).push(arguments) }
    [].slice.call(old && old.q || []).forEach(function (c) { R.apply(null, c); });
    if (d.body) safe(start)(); else d.addEventListener('DOMContentLoaded', safe(start));
  } catch (e) { /* never break the host page */ }
})(window, document);
