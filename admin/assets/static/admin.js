// The admin page: polls api/state, keeps one element per panel, row and
// chart (keyed, so that a button stays put between polls), draws the charts
// on canvases, and posts the queue actions with the page's CSRF token.
// Everything shown from the server goes through textContent, never HTML.
'use strict';

(() => {
  const token = document.querySelector('meta[name="admin-token"]').content;
  const pollMS = Number(document.body.dataset.pollMs) || 1000;
  const palette = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f'];
  let polls = 0;
  let timer = 0;

  // el makes an element: el('td', {class: 'x', dataset: {k: v}}, 'text', child...).
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  }

  // keyed returns the child of parent with data-key key, made by make()
  // and appended when there is none; sweep removes the children not kept.
  function keyed(parent, key, make) {
    for (const c of parent.children) {
      if (c.dataset.key === key) {
        c.dataset.kept = '1';
        return c;
      }
    }
    const c = make();
    c.dataset.key = key;
    c.dataset.kept = '1';
    parent.append(c);
    return c;
  }
  function sweep(parent) {
    for (const c of [...parent.children]) {
      if (c.dataset.kept !== '1') c.remove();
      else delete c.dataset.kept;
    }
  }

  // Formatting. null is unknown: no sample yet, or nothing to divide by.
  const dash = '\u2013';
  function fmtCount(v) { return v == null ? dash : Number(v).toLocaleString('en-US'); }
  function fmtRate(v) { return v == null ? dash : (v >= 100 ? v.toFixed(0) : v.toFixed(v >= 10 ? 1 : 2)) + '/s'; }
  function fmtSeconds(v) {
    if (v == null) return dash;
    if (v === 0) return '0';
    if (v < 1e-3) return (v * 1e6).toFixed(0) + ' \u00b5s';
    if (v < 1) return (v * 1e3).toFixed(v < 0.01 ? 2 : 1) + ' ms';
    if (v < 120) return v.toFixed(2) + ' s';
    return (v / 60).toFixed(1) + ' min';
  }
  function fmtRatio(v) { return v == null ? dash : (v * 100).toFixed(1) + '%'; }
  function fmtTime(ms) { return ms ? new Date(ms).toLocaleTimeString('en-GB') : dash; }

  // set shows a figure: its text, and its raw value in data-value for
  // whoever reads the page by machine.
  function set(e, text, value) {
    if (e.textContent !== text) e.textContent = text;
    const v = value == null ? '' : String(value);
    if (e.dataset.value !== v) e.dataset.value = v;
  }

  // figures makes a row of labelled figures; each value has class name.
  function figures(names) {
    const row = el('div', {class: 'figures'});
    for (const [name, label] of names) {
      row.append(el('div', {class: 'figure'}, el('span', {class: 'label'}, label), el('span', {class: 'value ' + name}, dash)));
    }
    return row;
  }

  // Charts.
  function updateCharts(box, charts, st) {
    for (const c of charts || []) {
      const fig = keyed(box, c.id, () => el('figure', {class: 'chart', dataset: {chart: c.id}},
        el('figcaption', {}, c.title + (c.unit ? ' (' + c.unit + ')' : '')),
        el('canvas', {width: '300', height: '90'}),
        el('div', {class: 'legend'})));
      const legend = fig.querySelector('.legend');
      if (c.lines.length > 1 || legend.children.length) {
        c.lines.forEach((l, i) => {
          const s = keyed(legend, l.label, () => el('span', {}, l.label));
          s.style.setProperty('--c', palette[i % palette.length]);
        });
        sweep(legend);
      }
      draw(fig.querySelector('canvas'), c, st);
    }
    sweep(box);
  }

  function draw(canvas, c, st) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 300, h = canvas.clientHeight || 90;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    let points = 0, top = 0;
    for (const l of c.lines) {
      points = Math.max(points, l.v.length);
      for (const v of l.v) if (v != null && v > top) top = v;
    }
    canvas.dataset.points = String(points);
    if (c.id === 'hit_ratio') top = 1;
    if (top <= 0) top = 1;
    const pad = {l: 4, r: 4, t: 14, b: 4};
    const x0 = st.now - st.window * 1000;
    const x = t => pad.l + (t - x0) / (st.window * 1000) * (w - pad.l - pad.r);
    const y = v => h - pad.b - v / top * (h - pad.t - pad.b);
    g.strokeStyle = '#e3e7eb';
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(pad.l, y(top));
    g.lineTo(w - pad.r, y(top));
    g.moveTo(pad.l, y(0));
    g.lineTo(w - pad.r, y(0));
    g.stroke();
    g.fillStyle = '#5f6b76';
    g.font = '10px system-ui, sans-serif';
    g.fillText(c.id === 'hit_ratio' ? '100%' : c.unit === 's' ? fmtSeconds(top) : String(+top.toPrecision(3)), pad.l + 2, 10);
    if (!points) {
      g.fillText(st.sampling ? 'waiting for samples' : 'no samples: Handler.Run is not running', pad.l + 2, h / 2 + 4);
      return;
    }
    c.lines.forEach((l, i) => {
      g.strokeStyle = palette[i % palette.length];
      g.lineWidth = 1.5;
      g.beginPath();
      let pen = false;
      for (let k = 0; k < l.v.length; k++) {
        const v = l.v[k];
        if (v == null) { pen = false; continue; }
        if (pen) g.lineTo(x(l.t[k]), y(v));
        else g.moveTo(x(l.t[k]), y(v));
        pen = true;
      }
      g.stroke();
    });
  }

  function section(id, items) {
    const s = document.getElementById(id);
    s.hidden = !(items && items.length);
    return s.querySelector('.panels');
  }

  // Queues.
  function renderQueues(st) {
    const box = section('queues', st.queues);
    for (const q of st.queues || []) {
      const p = keyed(box, q.store + '/' + q.queue, () => {
        const dead = el('table', {class: 'dead-letters'},
          el('thead', {}, el('tr', {}, ...['job', 'type', 'attempts', 'last error', 'died', ''].map(t => el('th', {}, t)))),
          el('tbody'));
        return el('div', {class: 'panel', dataset: {queue: q.store + '/' + q.queue, store: q.store, name: q.queue}},
          el('h3', {}, q.queue + ' ', el('span', {class: 'muted'}, q.store), ' ', el('span', {class: 'paused-flag'})),
          figures([['pending', 'depth'], ['ready', 'ready'], ['scheduled', 'scheduled'], ['active', 'active'], ['dead', 'dead'],
            ['throughput', 'throughput'], ['latency', 'latency (mean)'], ['failures', 'failures'], ['oldest', 'oldest ready'], ['done', 'done']]),
          el('div', {class: 'actions'},
            el('button', {class: 'pause', dataset: {action: 'pause'}}, 'pause'),
            el('button', {class: 'retry-all', dataset: {action: 'retry-all'}}, 'retry all dead'),
            el('button', {class: 'delete-all danger', dataset: {action: 'delete-all'}}, 'delete all dead')),
          el('div', {class: 'charts'}),
          dead);
      });
      p.dataset.paused = String(q.paused);
      set(p.querySelector('.paused-flag'), q.paused ? 'paused' : '', null);
      p.querySelector('.paused-flag').className = 'paused-flag' + (q.paused ? ' paused' : '');
      const pause = p.querySelector('button.pause');
      pause.dataset.action = q.paused ? 'resume' : 'pause';
      set(pause, q.paused ? 'resume' : 'pause', null);
      const f = n => p.querySelector('.value.' + n);
      set(f('pending'), fmtCount(q.pending), q.pending);
      set(f('ready'), fmtCount(q.ready), q.ready);
      set(f('scheduled'), fmtCount(q.scheduled), q.scheduled);
      set(f('active'), fmtCount(q.active), q.active);
      set(f('dead'), fmtCount(q.dead), q.dead);
      set(f('throughput'), fmtRate(q.throughput), q.throughput);
      set(f('latency'), fmtSeconds(q.latency), q.latency);
      set(f('failures'), fmtRate(q.failures), q.failures);
      set(f('oldest'), fmtSeconds(q.oldestReady), q.oldestReady);
      set(f('done'), fmtCount(q.doneTotal), q.doneTotal);
      p.querySelector('button.retry-all').disabled = !q.dead;
      p.querySelector('button.delete-all').disabled = !q.dead;
      updateCharts(p.querySelector('.charts'), q.charts, st);
      const body = p.querySelector('.dead-letters tbody');
      for (const d of q.deadLetters || []) {
        const row = keyed(body, d.id, () => el('tr', {dataset: {job: d.id}},
          el('td', {class: 'id'}, d.id), el('td', {}, d.type), el('td', {}, String(d.attempt)),
          el('td', {class: 'error'}, d.error), el('td', {}, fmtTime(d.died)),
          el('td', {class: 'buttons'}, el('button', {class: 'retry', dataset: {action: 'retry', id: d.id}}, 'retry'), ' ',
            el('button', {class: 'delete danger', dataset: {action: 'delete', id: d.id}}, 'delete'))));
        row.children[2].textContent = String(d.attempt);
      }
      sweep(body);
      p.querySelector('.dead-letters').hidden = !(q.deadLetters && q.deadLetters.length);
    }
    sweep(box);
  }

  // Elections.
  function renderElections(st) {
    const box = section('elections', st.elections);
    for (const e of st.elections || []) {
      const p = keyed(box, e.name, () => el('div', {class: 'panel', dataset: {election: e.name}},
        el('h3', {}, e.name),
        figures([['role', 'this process'], ['leader', 'leader'], ['token', 'token'], ['since', 'since'],
          ['terms', 'terms won'], ['changes', 'leader changes']]),
        el('p', {class: 'error no'})));
      const f = n => p.querySelector('.value.' + n);
      set(f('role'), e.role, e.role);
      set(f('leader'), e.vacant ? 'vacant' : (e.leader || dash), e.leader);
      set(f('token'), e.token || dash, e.token);
      set(f('since'), e.since ? (e.sinceChange ? '' : '\u2264 ') + fmtTime(e.since) : dash, e.since);
      set(f('terms'), fmtCount(e.terms), e.terms);
      set(f('changes'), fmtCount(e.leaderChanges), e.leaderChanges);
      set(p.querySelector('.error'), e.error || '', null);
    }
    sweep(box);
  }

  // Balancers.
  function renderBalancers(st) {
    const box = section('balancers', st.balancers);
    for (const b of st.balancers || []) {
      const p = keyed(box, b.name, () => el('div', {class: 'panel', dataset: {balancer: b.name}},
        el('h3', {}, b.name + ' ', el('span', {class: 'panic no'})),
        el('table', {},
          el('thead', {}, el('tr', {}, ...['backend', 'health', 'in flight', 'requests', 'latency (mean)', 'picks', 'errors'].map(t => el('th', {}, t)))),
          el('tbody')),
        el('p', {class: 'muted no-backend'}),
        el('div', {class: 'charts'})));
      set(p.querySelector('.panic'), b.panic ? 'panic mode: too few healthy backends' : '', null);
      set(p.querySelector('.no-backend'), b.noBackend ? fmtCount(b.noBackend) + ' picks found no backend' : '', b.noBackend);
      const body = p.querySelector('tbody');
      for (const r of b.backends || []) {
        const row = keyed(body, r.addr, () => el('tr', {dataset: {backend: r.addr}},
          el('td', {}, r.addr), el('td', {class: 'health'}), el('td', {class: 'in-flight'}), el('td', {class: 'rate'}),
          el('td', {class: 'latency'}), el('td', {class: 'picks'}), el('td', {class: 'errors'})));
        const health = row.querySelector('.health');
        set(health, r.healthy == null ? dash : r.healthy ? 'up' : 'down', r.healthy);
        health.className = 'health' + (r.healthy == null ? '' : r.healthy ? ' yes' : ' no');
        set(row.querySelector('.in-flight'), fmtCount(r.inFlight), r.inFlight);
        set(row.querySelector('.rate'), fmtRate(r.rate), r.rate);
        set(row.querySelector('.latency'), fmtSeconds(r.latency), r.latency);
        set(row.querySelector('.picks'), fmtCount(r.picks), r.picks);
        set(row.querySelector('.errors'), fmtCount(r.errors), r.errors);
      }
      sweep(body);
      updateCharts(p.querySelector('.charts'), b.charts, st);
    }
    sweep(box);
  }

  // Replicas.
  function renderReplicas(st) {
    const box = section('replicas', st.replicas);
    for (const r of st.replicas || []) {
      const p = keyed(box, r.name, () => el('div', {class: 'panel', dataset: {replicas: r.name}},
        el('h3', {}, r.name),
        el('table', {},
          el('thead', {}, el('tr', {}, ...['node', 'role', 'lag', 'serving', 'reads', 'writes'].map(t => el('th', {}, t)))),
          el('tbody')),
        el('div', {class: 'charts'})));
      const body = p.querySelector('tbody');
      for (const n of r.nodes || []) {
        const row = keyed(body, n.name, () => el('tr', {dataset: {node: n.name}},
          el('td', {}, n.name), el('td', {class: 'role'}), el('td', {class: 'lag'}), el('td', {class: 'serving'}),
          el('td', {class: 'reads'}), el('td', {class: 'writes'})));
        set(row.querySelector('.role'), n.role, n.role);
        set(row.querySelector('.lag'), fmtSeconds(n.lag), n.lag);
        const serving = row.querySelector('.serving');
        set(serving, n.serving ? 'yes' : 'no', n.serving);
        serving.className = 'serving ' + (n.serving ? 'yes' : 'no');
        set(row.querySelector('.reads'), fmtCount(n.reads), n.reads);
        set(row.querySelector('.writes'), fmtCount(n.writes), n.writes);
      }
      sweep(body);
      updateCharts(p.querySelector('.charts'), r.charts, st);
    }
    sweep(box);
  }

  // Caches.
  function renderCaches(st) {
    const box = section('caches', st.caches);
    for (const c of st.caches || []) {
      const p = keyed(box, c.name, () => el('div', {class: 'panel', dataset: {cache: c.name}},
        el('h3', {}, c.name),
        figures([['hit-ratio', 'hit ratio (now)'], ['hit-ratio-total', 'hit ratio (all)'], ['hits', 'hits'], ['misses', 'misses'],
          ['loads', 'loads'], ['load-rate', 'load rate'], ['load-latency', 'load time (mean)'], ['stale', 'stale served'],
          ['refreshes', 'refreshes'], ['evictions', 'evictions'], ['load-errors', 'load errors']]),
        el('div', {class: 'charts'})));
      const f = n => p.querySelector('.value.' + n);
      set(f('hit-ratio'), fmtRatio(c.hitRatio), c.hitRatio);
      set(f('hit-ratio-total'), fmtRatio(c.hitRatioTotal), c.hitRatioTotal);
      set(f('hits'), fmtCount(c.hits), c.hits);
      set(f('misses'), fmtCount(c.misses), c.misses);
      set(f('loads'), fmtCount(c.loads), c.loads);
      set(f('load-rate'), fmtRate(c.loadRate), c.loadRate);
      set(f('load-latency'), fmtSeconds(c.loadLatency), c.loadLatency);
      set(f('stale'), fmtCount(c.staleServed), c.staleServed);
      set(f('refreshes'), fmtCount(c.refreshes), c.refreshes);
      set(f('evictions'), fmtCount(c.evictions), c.evictions);
      set(f('load-errors'), fmtCount(c.loadErrors), c.loadErrors);
      updateCharts(p.querySelector('.charts'), c.charts, st);
    }
    sweep(box);
  }

  function render(st) {
    renderQueues(st);
    renderElections(st);
    renderBalancers(st);
    renderReplicas(st);
    renderCaches(st);
    const any = ['queues', 'elections', 'balancers', 'replicas', 'caches'].some(k => st[k] && st[k].length);
    document.getElementById('empty').hidden = any;
    document.getElementById('updated').textContent = 'updated ' + fmtTime(st.now);
    document.getElementById('sampling').textContent = st.sampling
      ? '\u00b7 sampling every ' + st.interval + ' s, charts of the last ' + Math.round(st.window / 60) + ' min'
      : '\u00b7 not sampling (Handler.Run is not running): no charts or rates';
    const problems = document.getElementById('problems');
    problems.replaceChildren(...(st.problems || []).map(m => el('li', {}, m)));
  }

  function result(ok, msg) {
    const r = document.getElementById('action-result');
    r.dataset.ok = String(ok);
    r.textContent = msg;
  }

  async function poll() {
    clearTimeout(timer);
    try {
      const resp = await fetch('api/state', {cache: 'no-store', credentials: 'same-origin'});
      if (!resp.ok) throw new Error(resp.status + ': ' + (await resp.text()).trim());
      render(await resp.json());
      polls++;
      document.body.dataset.polls = String(polls);
    } catch (err) {
      document.getElementById('updated').textContent = 'update failed: ' + err.message;
    }
    timer = setTimeout(poll, pollMS);
  }

  async function act(button) {
    const panel = button.closest('[data-queue]');
    const action = button.dataset.action;
    if (action === 'delete-all' && !window.confirm('Delete every dead letter of ' + panel.dataset.name + '?')) return;
    const body = {store: panel.dataset.store, queue: panel.dataset.name, action: action};
    if (button.dataset.id) body.id = button.dataset.id;
    button.disabled = true;
    try {
      const resp = await fetch('api/queue', {
        method: 'POST',
        credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', 'X-Admin-Token': token},
        body: JSON.stringify(body),
      });
      const r = await resp.json().catch(() => ({ok: false, message: resp.status + ' ' + resp.statusText}));
      result(resp.ok && r.ok, r.message);
    } catch (err) {
      result(false, err.message);
    } finally {
      button.disabled = false;
    }
    poll();
  }

  document.addEventListener('click', ev => {
    const b = ev.target.closest('button[data-action]');
    if (b && !b.disabled) act(b);
  });
  poll();
})();
