// Web farm dashboard: polls the controller's state once a second and renders
// it. All state text is written with textContent, never parsed as HTML.
(function () {
  "use strict";

  var body = document.body;
  var stateURL = body.dataset.stateUrl || "/api/state";
  var actionURL = (body.dataset.actionUrl || "/api/actions").replace(/\/+$/, "");
  var POLL_MS = 1000;
  var polls = 0;
  var pollTimer = null;
  var polling = false;
  var resultTimer = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function setText(id, value) {
    var e = $(id);
    var s = String(value);
    if (e && e.textContent !== s) e.textContent = s;
  }

  function num(v) {
    var n = Number(v);
    return isFinite(n) ? n : 0;
  }

  // Plain digits (no thousands separators) so figures parse back easily.
  function fmtInt(v) { return String(Math.round(num(v))); }

  function fmtFloat(v, digits) { return num(v).toFixed(digits); }

  function pct(v) { return (Math.max(0, Math.min(1, num(v))) * 100).toFixed(1) + "%"; }

  function list(v) { return Array.isArray(v) ? v : []; }

  function setBar(fill, fraction) {
    var f = Math.max(0, Math.min(1, num(fraction)));
    fill.style.width = (f * 100).toFixed(2) + "%";
  }

  function toggleEmpty(name, isEmpty) {
    var p = document.querySelector('[data-empty-for="' + name + '"]');
    if (p) p.hidden = !isEmpty;
  }

  // sync reconciles container's children with items, keyed by the data
  // attribute attr (e.g. "data-clone"); elements keep their identity across
  // polls, which keeps the page calm and easy to test.
  function sync(container, items, attr, create, update) {
    var existing = {};
    Array.prototype.forEach.call(container.children, function (c) {
      existing[c.getAttribute(attr)] = c;
    });
    var seen = {};
    var i = 0;
    items.forEach(function (item) {
      var key = String(item.name);
      if (seen[key]) return; // duplicate names: first wins
      seen[key] = true;
      var node = existing[key];
      if (!node) {
        node = create(item);
        node.setAttribute(attr, key);
      }
      update(node, item);
      if (container.children[i] !== node) container.insertBefore(node, container.children[i] || null);
      i++;
    });
    Object.keys(existing).forEach(function (key) {
      if (!seen[key]) container.removeChild(existing[key]);
    });
  }

  function row(name) {
    var li = el("li", "row");
    var head = el("div", "row-head");
    head.appendChild(el("span", "name", name));
    li.appendChild(head);
    return { li: li, head: head };
  }

  // badge creates a badge in slot (a class naming its position, e.g.
  // "b-role"); setBadge keeps the slot class and sets the colour kind.
  function badge(slot) {
    var b = el("span", "badge " + slot);
    b.dataset.slot = slot;
    return b;
  }

  function setBadge(b, kind, text) {
    b.className = "badge " + b.dataset.slot + " " + kind;
    b.dataset.kind = kind;
    b.textContent = text;
  }

  function renderClones(clones) {
    var max = 0;
    clones.forEach(function (c) { max = Math.max(max, num(c.requests)); });
    sync($("clones"), clones, "data-clone", function (c) {
      var r = row(c.name);
      r.head.appendChild(el("code", "addr"));
      r.head.appendChild(badge("b-status"));
      var stats = el("div", "row-stats");
      stats.appendChild(el("span", "requests"));
      stats.appendChild(el("span", "unit", " req"));
      stats.appendChild(el("span", "rps"));
      stats.appendChild(el("span", "unit", " req/s"));
      r.li.appendChild(stats);
      var bar = el("div", "bar");
      bar.setAttribute("aria-hidden", "true");
      bar.appendChild(el("div", "fill"));
      r.li.appendChild(bar);
      return r.li;
    }, function (li, c) {
      var up = c.up === true;
      li.dataset.up = up ? "true" : "false";
      li.querySelector(".addr").textContent = String(c.addr || "");
      setBadge(li.querySelector(".b-status"), up ? "up" : "down", up ? "up" : "down");
      li.querySelector(".requests").textContent = fmtInt(c.requests);
      li.querySelector(".requests").dataset.value = String(num(c.requests));
      li.querySelector(".rps").textContent = fmtFloat(c.rps, 1);
      setBar(li.querySelector(".fill"), max > 0 ? num(c.requests) / max : 0);
    });
    setText("clones-count", clones.filter(function (c) { return c.up === true; }).length + " / " + clones.length + " up");
    toggleEmpty("clones", clones.length === 0);
  }

  function renderBalancers(lbs) {
    sync($("balancers"), lbs, "data-balancer", function (b) {
      var r = row(b.name);
      r.head.appendChild(badge("b-role"));
      r.head.appendChild(el("span", "epoch"));
      return r.li;
    }, function (li, b) {
      var role = String(b.role || "unknown");
      li.dataset.role = role;
      var kind = role === "active" || role === "passive" || role === "dead" ? role : "unknown";
      setBadge(li.querySelector(".b-role"), kind, role);
      li.querySelector(".epoch").textContent = "epoch " + fmtInt(b.epoch);
    });
    toggleEmpty("balancers", lbs.length === 0);
  }

  function renderShards(shards) {
    var max = 0;
    shards.forEach(function (s) { max = Math.max(max, num(s.keys)); });
    sync($("shards"), shards, "data-shard", function (s) {
      var r = row(s.name);
      r.head.appendChild(el("span", "keys"));
      var bar = el("div", "bar");
      bar.setAttribute("aria-hidden", "true");
      bar.appendChild(el("div", "fill"));
      r.li.appendChild(bar);
      return r.li;
    }, function (li, s) {
      li.dataset.keys = String(num(s.keys));
      li.querySelector(".keys").textContent = fmtInt(s.keys) + " keys";
      setBar(li.querySelector(".fill"), max > 0 ? num(s.keys) / max : 0);
    });
    setText("shards-count", shards.length);
    toggleEmpty("shards", shards.length === 0);
  }

  function renderDatabase(nodes) {
    sync($("database"), nodes, "data-db", function (d) {
      var r = row(d.name);
      r.head.appendChild(badge("b-role"));
      r.head.appendChild(badge("b-health"));
      r.head.appendChild(badge("b-serving"));
      r.head.appendChild(el("span", "lag"));
      return r.li;
    }, function (li, d) {
      var role = String(d.role || "unknown");
      li.dataset.role = role;
      li.dataset.healthy = d.healthy === true ? "true" : "false";
      li.dataset.serving = d.serving === true ? "true" : "false";
      setBadge(li.querySelector(".b-role"), role === "primary" ? "primary" : "replica", role);
      setBadge(li.querySelector(".b-health"), d.healthy === true ? "up" : "down", d.healthy === true ? "healthy" : "unhealthy");
      setBadge(li.querySelector(".b-serving"), d.serving === true ? "serving" : "idle", d.serving === true ? "serving" : "not serving");
      li.querySelector(".lag").textContent = "lag " + fmtInt(d.lagMs) + " ms";
    });
    toggleEmpty("database", nodes.length === 0);
  }

  function renderEvents(events) {
    var ol = $("events");
    var atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 8;
    // Rebuild only when the log changed.
    var sig = events.join("\n");
    if (ol.dataset.sig !== sig) {
      ol.dataset.sig = sig;
      while (ol.firstChild) ol.removeChild(ol.firstChild);
      events.forEach(function (e) { ol.appendChild(el("li", "event", e)); });
      if (atBottom) ol.scrollTop = ol.scrollHeight;
    }
    toggleEmpty("events", events.length === 0);
  }

  function render(s) {
    var t = String(s.time || "");
    var updated = $("updated");
    updated.textContent = t;
    updated.setAttribute("datetime", t);
    setText("public", s.public || "–");
    setText("mode", s.mode || "–");

    renderClones(list(s.clones));
    renderBalancers(list(s.balancers));

    var cache = s.cache || {};
    setText("cache-hit-ratio", pct(cache.hitRatio));
    $("cache-hit-ratio").dataset.value = String(num(cache.hitRatio));
    setText("cache-hits", fmtInt(cache.hits));
    setText("cache-misses", fmtInt(cache.misses));
    setBar($("cache-bar"), cache.hitRatio);

    var q = s.queue || {};
    setText("queue-pending", fmtInt(q.pending));
    setText("queue-done", fmtInt(q.done));
    setText("queue-accepted", fmtInt(q.accepted));
    setText("queue-failed", fmtInt(q.failed));

    renderShards(list(s.shards));

    var leader = s.leader || {};
    var vacant = leader.vacant === true || !leader.id;
    setText("leader", vacant ? "vacant" : leader.id);
    $("leader").dataset.vacant = vacant ? "true" : "false";
    setText("leader-token", fmtInt(leader.token));
    $("leader-token").dataset.value = String(num(leader.token));

    renderDatabase(list(s.database));

    var tr = s.traffic || {};
    setText("traffic-ok", fmtInt(tr.ok));
    setText("traffic-failed", fmtInt(tr.failed));
    $("traffic-failed").dataset.value = String(num(tr.failed));

    renderEvents(list(s.events).map(String));
  }

  function setConnection(status, text) {
    var c = $("connection");
    c.dataset.status = status;
    c.textContent = text;
  }

  function schedule(ms) {
    if (pollTimer !== null) clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, ms);
  }

  function poll() {
    pollTimer = null;
    if (polling) return;
    polling = true;
    fetch(stateURL, { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.json();
      })
      .then(function (s) {
        if (!s || typeof s !== "object") throw new Error("bad state");
        render(s);
        polls++;
        body.dataset.polls = String(polls);
        setConnection("live", "live");
      })
      .catch(function (err) {
        setConnection("error", "disconnected (" + (err && err.message ? err.message : err) + ")");
      })
      .then(function () {
        polling = false;
        schedule(POLL_MS);
      });
  }

  function showResult(ok, text) {
    var p = $("action-result");
    p.textContent = text;
    p.dataset.ok = ok ? "true" : "false";
    p.hidden = false;
    if (resultTimer !== null) clearTimeout(resultTimer);
    resultTimer = setTimeout(function () { p.hidden = true; resultTimer = null; }, 4000);
  }

  function act(button) {
    var action = button.dataset.action;
    button.disabled = true;
    fetch(actionURL + "/" + encodeURIComponent(action), { method: "POST", cache: "no-store" })
      .then(function (resp) {
        return resp.text().then(function (text) {
          text = text.trim();
          if (!resp.ok) throw new Error("HTTP " + resp.status + (text ? ": " + text : ""));
          showResult(true, button.textContent + ": " + (text || "ok"));
        });
      })
      .catch(function (err) {
        showResult(false, button.textContent + " failed: " + (err && err.message ? err.message : err));
      })
      .then(function () {
        button.disabled = false;
        if (!polling) schedule(0);
      });
  }

  Array.prototype.forEach.call(document.querySelectorAll("button[data-action]"), function (b) {
    b.addEventListener("click", function () { act(b); });
  });

  poll();
})();
