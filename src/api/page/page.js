// The node's page, live: renders /v1/view snapshots from the server-sent stream (polling when there is
// no EventSource). Updates elements in place, keyed by node id, so focus and selection survive updates.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const STALE_MS = 3000;

let selected = null;
let lastAt = 0;
let current = null;

// ---- formatting -------------------------------------------------------------------------------
function ms(x) {
  if (x === null || x === undefined) return "–";
  return `${x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : Math.round(x)} ms`;
}
function pct(x) {
  if (x === null || x === undefined) return "–";
  return `${(x * 100).toFixed(x > 0 && x < 0.1 ? 1 : 0)}%`;
}
function bps(x) {
  if (!x) return "0";
  const u = [["Gbit/s", 1e9], ["Mbit/s", 1e6], ["kbit/s", 1e3]];
  for (const [n, v] of u) if (x >= v) return `${(x / v).toFixed(x / v < 10 ? 1 : 0)} ${n}`;
  return `${Math.round(x)} bit/s`;
}
function duration(s) {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
function clock(t) {
  const d = new Date(t);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0").slice(0, 1);
}
const short = (id) => (id ? id.slice(0, 10) : "");

// ---- names and colours ---------------------------------------------------------------------------
function nameOf(id) {
  if (!current) return short(id);
  if (id === current.node.id) return current.node.name;
  const p = current.peers.find((x) => x.id === id);
  if (p && p.name) return p.name;
  const r = current.relays.find((x) => x.id === id);
  return (r && r.name) || short(id);
}
/** One stable colour per relay (from its id), green for direct. */
function hue(id) {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return `var(--p${h % 6})`;
}
function pathColor(p) {
  if (!p.path) return "var(--muted)";
  return p.path === "direct" ? "var(--direct)" : hue(p.via[0]);
}
function pathText(p) {
  if (!p.path) return p.link === "connecting" ? "connecting…" : p.link === "open" ? "linked, no session" : "no path";
  return p.path === "direct" ? "direct" : `via ${p.via.map(nameOf).join(" → ")}`;
}

// ---- small DOM helpers -----------------------------------------------------------------------------
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "color" || k === "width") e.style.setProperty(k, v); // through the CSSOM: CSP forbids style attributes
    else e.setAttribute(k, v);
  }
  for (const c of kids) if (c !== null && c !== undefined) e.append(c);
  return e;
}
function s(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
function setText(e, t) {
  if (e.textContent !== t) e.textContent = t;
}
function setAttr(e, k, v) {
  if (e.getAttribute(k) !== String(v)) e.setAttribute(k, v);
}
/** A colour that may be a var(): through the CSSOM (not every browser takes var() in SVG attributes; CSP forbids style attributes). */
function paint(e, prop, v) {
  if (e.style.getPropertyValue(prop) !== v) e.style.setProperty(prop, v);
}
function fill(e, ...kids) {
  e.replaceChildren(...kids.filter((k) => k !== null && k !== undefined));
}

// ---- selection and keyboard ------------------------------------------------------------------------
function select(id) {
  selected = selected === id ? null : id;
  for (const e of document.querySelectorAll("[data-key]")) e.classList.toggle("sel", e.dataset.key === selected);
}
function activatable(e, id) {
  e.dataset.key = id;
  e.addEventListener("click", () => select(id));
  e.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      select(id);
    } else if ((ev.key === "ArrowDown" || ev.key === "ArrowUp") && e.tagName === "TR") {
      ev.preventDefault();
      const next = ev.key === "ArrowDown" ? e.nextElementSibling : e.previousElementSibling;
      if (next) next.focus();
    }
  });
}

// ---- header ---------------------------------------------------------------------------------------
function renderNode(v) {
  const n = v.node;
  setText($("node-name"), n.name);
  document.title = `${n.name} · trellis`;
  setText($("node-id"), `node ${n.id}`);
  const nets = v.networks.length ? v.networks.map((x) => h("span", { class: "chip", title: `network ${x.id}${x.tags.length ? `, tags ${x.tags.join(", ")}` : ""}`, text: x.name })) : [h("span", { class: "chip", text: "allow-list" })];
  const role = [n.seed ? "seed" : null, v.node.relay ? "relay" : null].filter(Boolean).join(" + ") || "edge";
  const facts = [
    ["Overlay", [h("span", { class: "mono", text: n.ipv6 }), n.ipv4 ? h("span", { class: "mono", text: `  ${n.ipv4}` }) : null]],
    ["Networks", nets],
    ["Role", [role]],
    ["TUN", [`${n.tun} · MTU ${n.mtu}`]],
    ["Up", [duration(n.uptime_s)]],
  ];
  const dl = $("node-facts");
  const key = JSON.stringify(facts.map(([k, vals]) => [k, vals.map((x) => (typeof x === "string" ? x : x && x.textContent))]));
  if (dl.dataset.key === key) return;
  dl.dataset.key = key;
  fill(dl, ...facts.map(([k, vals]) => h("div", {}, h("dt", { text: k }), h("dd", {}, ...vals))));
}

// ---- the drawing -----------------------------------------------------------------------------------
const COL = { self: 80, relay: 380, peer: 680 };
const TOP = 46;

function layout(v) {
  const relayIds = new Set(v.relays.map((r) => r.id));
  for (const p of v.peers) for (const r of p.via) relayIds.add(r);
  const byName = (a, b) => nameOf(a).localeCompare(nameOf(b));
  const relays = [...relayIds].sort(byName);
  const peers = v.peers.filter((p) => !relayIds.has(p.id)).map((p) => p.id).sort(byName);
  const rows = Math.max(relays.length, peers.length, 1);
  const height = Math.max(300, TOP + rows * (rows > 6 ? 64 : 100) + 30);
  const pos = new Map();
  // Relays sit half a row above the peers' rows, so a direct edge never runs through a relay.
  const shift = relays.length && peers.length ? 34 : 0;
  const place = (ids, x, dy) => ids.forEach((id, i) => pos.set(id, { x, y: TOP + ((i + 0.5) * (height - TOP - 30)) / ids.length + dy }));
  pos.set(v.node.id, { x: COL.self, y: TOP + (height - TOP - 30) / 2 });
  place(relays, COL.relay, -shift);
  place(peers, COL.peer, shift);
  return { relays, peers, height, pos };
}

/** Cubic Bézier segments from a to b with level tangents; an edge that skips the relay column bends through a gap between relays. */
function route(a, b, L) {
  const seg = (p, q) => {
    const dx = Math.max(40, Math.abs(q.x - p.x) * 0.45);
    return [p, { x: p.x + dx, y: p.y }, { x: q.x - dx, y: q.y }, q];
  };
  const ys = L.relays.map((id) => L.pos.get(id).y).sort((x, y) => x - y);
  if (Math.abs(b.x - a.x) <= COL.peer - COL.relay + 10 || !ys.length) return [seg(a, b)];
  const gaps = [ys[0] - 64, ys[ys.length - 1] + 64];
  for (let i = 0; i + 1 < ys.length; i++) if (ys[i + 1] - ys[i] >= 80) gaps.push((ys[i] + ys[i + 1]) / 2);
  const ok = gaps.filter((y) => y > TOP && y < L.height - 12);
  // Peers in the upper half pass above the relays they must avoid, the lower half below: fewer crossings.
  const mid = (ys[0] + ys[ys.length - 1]) / 2, up = b.y <= (TOP + L.height) / 2;
  const cost = (y) => Math.abs(y - b.y) + ((y < mid) !== up ? 1000 : 0);
  const gy = (ok.length ? ok : gaps).reduce((best, y) => (cost(y) < cost(best) ? y : best));
  const g = { x: COL.relay, y: gy };
  return [seg(a, g), seg(g, b)];
}
function pathD(segs) {
  return segs.map((c, i) => `${i ? "" : `M${c[0].x},${c[0].y} `}C${c[1].x},${c[1].y} ${c[2].x},${c[2].y} ${c[3].x},${c[3].y}`).join(" ");
}
/** The point at t (0..1) along the segments (each segment an equal share). */
function at(segs, t) {
  const n = segs.length;
  const i = Math.min(n - 1, Math.floor(t * n));
  const c = segs[i], u0 = t * n - i, u = 1 - u0;
  const k = [u * u * u, 3 * u * u * u0, 3 * u * u0 * u0, u0 * u0 * u0];
  return { x: k.reduce((s, w, j) => s + w * c[j].x, 0), y: k.reduce((s, w, j) => s + w * c[j].y, 0) };
}

function edges(v, L) {
  const out = [];
  const peer = new Map(v.peers.map((p) => [p.id, p]));
  const self = v.node.id;
  for (const l of v.links) {
    const p = peer.get(l.peer);
    const isRelay = L.relays.includes(l.peer);
    let color = isRelay ? hue(l.peer) : "var(--muted)";
    let cls = "edge";
    if (!isRelay && p && p.path === "direct") color = "var(--direct)";
    else if (!isRelay) cls += " idle";
    if (!l.alive) cls += " down";
    out.push({ key: `link:${l.peer}`, from: self, to: l.peer, color, cls, label: l.alive ? ms(l.rtt_ms) : "down", t: isRelay ? 0.5 : 0.85, title: `link to ${nameOf(l.peer)}: ${l.alive ? `RTT ${ms(l.rtt_ms)}, loss ${pct(l.loss)}` : "silent (down)"}` });
  }
  const linked = new Set(v.links.map((l) => l.peer));
  for (const p of v.peers) {
    if (p.link === "connecting" && !linked.has(p.id)) out.push({ key: `link:${p.id}`, from: self, to: p.id, color: "var(--muted)", cls: "edge connecting", label: "connecting", t: 0.85, title: `link to ${nameOf(p.id)} connecting` });
    if (!p.via.length || L.relays.includes(p.id)) continue;
    const chain = [self, ...p.via, p.id];
    for (let i = 0; i + 1 < chain.length; i++) {
      if (i === 0 && linked.has(chain[1])) continue;
      const last = i + 2 === chain.length;
      out.push({ key: `hop:${p.id}:${i}`, from: chain[i], to: chain[i + 1], color: hue(p.via[0]), cls: "edge hop", label: last ? ms(p.rtt_ms) : "", t: 0.5, title: `${nameOf(p.id)} via ${p.via.map(nameOf).join(" → ")}: RTT ${ms(p.rtt_ms)}` });
    }
  }
  return out;
}

const drawn = { edges: new Map(), labels: new Map(), nodes: new Map() };

function reconcile(map, parent, wanted, make, update) {
  const seen = new Set();
  for (const w of wanted) {
    seen.add(w.key);
    let e = map.get(w.key);
    if (!e) {
      e = make(w);
      map.set(w.key, e);
      parent.append(e);
    }
    update(e, w);
  }
  for (const [k, e] of map) if (!seen.has(k)) (e.remove(), map.delete(k));
}

function renderMesh(v) {
  const svgEl = $("mesh");
  const L = layout(v);
  setAttr(svgEl, "viewBox", `0 0 760 ${L.height}`);
  const es = edges(v, L).filter((e) => L.pos.has(e.from) && L.pos.has(e.to));
  reconcile(drawn.edges, $("edges"), es, (w) => {
    const p = s("path", {});
    p.append(s("title", {}));
    return p;
  }, (e, w) => {
    setAttr(e, "d", pathD(route(L.pos.get(w.from), L.pos.get(w.to), L)));
    setAttr(e, "class", w.cls);
    paint(e, "stroke", w.color);
    setAttr(e, "data-edge", w.key);
    setText(e.firstChild, w.title);
  });
  reconcile(drawn.labels, $("labels"), es.filter((e) => e.label), () => s("text", { class: "elabel" }), (e, w) => {
    const m = at(route(L.pos.get(w.from), L.pos.get(w.to), L), w.t);
    setAttr(e, "x", m.x.toFixed(1));
    setAttr(e, "y", (m.y - 6).toFixed(1));
    setText(e, w.label);
  });

  const peer = new Map(v.peers.map((p) => [p.id, p]));
  const relay = new Map(v.relays.map((r) => [r.id, r]));
  const nodes = [{ key: v.node.id, kind: "self" }, ...L.relays.map((id) => ({ key: id, kind: "relay" })), ...L.peers.map((id) => ({ key: id, kind: "peer" }))];
  reconcile(drawn.nodes, $("nodes"), nodes, (w) => {
    const g = s("g", { class: `node ${w.kind}`, tabindex: "0", role: "button" });
    g.append(s("circle", { r: w.kind === "self" ? 24 : 19 }), s("text", { class: "glyph", dy: "4" }), s("text", { class: "name" }), s("text", { class: "sub" }));
    activatable(g, w.key);
    return g;
  }, (g, w) => {
    const { x, y } = L.pos.get(w.key);
    setAttr(g, "transform", `translate(${x},${y})`);
    const [circle, glyph, name, sub] = g.children;
    const nm = nameOf(w.key);
    const p = peer.get(w.key), r = relay.get(w.key);
    let color = "var(--muted)", line = "", label = nm;
    if (w.kind === "self") {
      line = "this node";
      label = `${nm}, this node`;
    } else if (w.kind === "relay") {
      color = hue(w.key);
      line = r ? (r.alive ? `relay · ${ms(r.rtt_ms)}` : "relay · down") : "relay (not linked)";
      label = `${nm}: ${line}`;
    } else if (p) {
      color = pathColor(p);
      line = pathText(p);
      label = `${nm}: ${line}, RTT ${ms(p.rtt_ms)}`;
    }
    if (w.kind !== "self") paint(circle, "stroke", color);
    paint(glyph, "fill", w.kind === "self" ? "var(--card)" : color);
    setText(glyph, w.kind === "relay" ? "R" : nm.slice(0, 1).toUpperCase());
    const below = w.kind === "self" ? 42 : 36;
    setAttr(name, "y", below);
    setText(name, nm);
    setAttr(sub, "y", below + 15);
    setText(sub, line);
    setAttr(g, "aria-label", label);
    g.classList.toggle("sel", selected === w.key);
  });
  // Column headings (static once drawn).
  if (!svgEl.querySelector(".col")) {
    for (const [x, t] of [[COL.self, "this node"], [COL.relay, "relays"], [COL.peer, "peers"]]) {
      const e = s("text", { class: "col", x, y: 18 });
      e.textContent = t;
      svgEl.insertBefore(e, $("edges"));
    }
  }
  const parts = v.peers.map((p) => `${nameOf(p.id)} ${pathText(p)}${p.rtt_ms !== null ? ` (${ms(p.rtt_ms)})` : ""}`);
  setText($("mesh-desc"), parts.length ? `${v.node.name} reaches ${parts.join("; ")}.` : "No peers yet.");

  const legend = [["direct", "var(--direct)", false], ...L.relays.map((id) => [`via ${nameOf(id)}`, hue(id), false]), ["relay hop", "var(--muted)", true], ["down", "var(--bad)", true]];
  const key = JSON.stringify(legend);
  const ul = $("legend");
  if (ul.dataset.key !== key) {
    ul.dataset.key = key;
    fill(ul, ...legend.map(([t, c, dash]) => h("li", {}, h("i", { class: dash ? "dash" : "", color: c }), t)));
  }
}

// ---- tables ----------------------------------------------------------------------------------------
const rows = { peers: new Map(), relays: new Map() };

/** Put rows in this order, moving only those out of place (moving a row would drop its focus). */
function order(tbody, want) {
  want.forEach((tr, i) => {
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
}

function renderPeers(v) {
  const tbody = $("peers-table").tBodies[0];
  const list = [...v.peers].sort((a, b) => nameOf(a.id).localeCompare(nameOf(b.id)));
  reconcile(rows.peers, tbody, list.map((p) => ({ key: p.id, p })), (w) => {
    const tr = h("tr", { tabindex: "0", "data-peer": w.key });
    for (const c of ["name", "addr", "pathcell", "num rtt", "num loss", "num tput", "why"]) tr.append(h("td", { class: c }));
    activatable(tr, w.key);
    return tr;
  }, (tr, { p }) => {
    const [name, addr, path, rtt, loss, tput, why] = tr.children;
    const nameKey = `${nameOf(p.id)}|${p.id}|${p.relay}`;
    if (name.dataset.key !== nameKey) {
      name.dataset.key = nameKey;
      fill(name, nameOf(p.id), h("small", { class: "mono", text: short(p.id) + (p.relay ? " · relay" : "") }));
    }
    const addrKey = `${p.ipv6}|${p.ipv4}|${p.underlay}`;
    if (addr.dataset.key !== addrKey) {
      addr.dataset.key = addrKey;
      fill(addr, h("span", { class: "mono", text: p.ipv6 }), p.ipv4 ? h("span", { class: "mono", text: p.ipv4 }) : null, p.underlay ? h("span", { class: "mono", title: "direct link's far end on the underlay", text: `↔ ${p.underlay}` }) : null);
    }
    const pt = pathText(p);
    setAttr(tr, "data-path", p.path || "");
    if (path.dataset.key !== `${pt}|${pathColor(p)}`) {
      path.dataset.key = `${pt}|${pathColor(p)}`;
      fill(path, h("span", { class: `path${p.path ? "" : " none"}`, color: pathColor(p), text: pt }));
    }
    setText(rtt, ms(p.rtt_ms));
    setText(loss, pct(p.loss));
    setText(tput, `↑ ${bps(p.tx_bps)}  ↓ ${bps(p.rx_bps)}`);
    setText(why, p.why || (p.session ? "" : "no session yet"));
    tr.classList.toggle("sel", selected === p.id);
  });
  order(tbody, list.map((p) => rows.peers.get(p.id)));
  setText($("peers-count"), v.peers.length ? String(v.peers.length) : "");
  $("peers-empty").hidden = v.peers.length > 0;
}

function renderRelays(v) {
  const tbody = $("relays-table").tBodies[0];
  const list = [...v.relays].sort((a, b) => nameOf(a.id).localeCompare(nameOf(b.id)));
  reconcile(rows.relays, tbody, list.map((r) => ({ key: r.id, r })), (w) => {
    const tr = h("tr", { tabindex: "0", "data-relay": w.key });
    for (const c of ["name", "state", "num rtt", "num jitter", "num loss", "num load", "num carrying", "scores"]) tr.append(h("td", { class: c }));
    activatable(tr, w.key);
    return tr;
  }, (tr, { r }) => {
    const [name, state, rtt, jitter, loss, load, carrying, scores] = tr.children;
    const nameKey = `${nameOf(r.id)}|${r.id}`;
    if (name.dataset.key !== nameKey) {
      name.dataset.key = nameKey;
      fill(name, h("span", { color: hue(r.id), text: "● " }), nameOf(r.id), h("small", { class: "mono", text: short(r.id) }));
    }
    const st = r.alive ? `up ${duration(r.uptime_s)}` : "down";
    if (state.dataset.key !== `${st}|${r.failures}`) {
      state.dataset.key = `${st}|${r.failures}`;
      fill(state, h("span", { class: r.alive ? "up" : "down", text: st }), r.failures ? h("small", { text: ` · ${r.failures} outage${r.failures > 1 ? "s" : ""}` }) : null);
    }
    setText(rtt, ms(r.rtt_ms));
    setText(jitter, ms(r.jitter_ms));
    setText(loss, pct(r.loss));
    setText(load, r.load === null ? "–" : `${r.load}%`);
    setText(carrying, `${r.carrying} peer${r.carrying === 1 ? "" : "s"}`);
    const sk = JSON.stringify(r.scores);
    if (scores.dataset.key !== sk) {
      scores.dataset.key = sk;
      if (!r.scores.length) fill(scores, h("span", { class: "empty", text: "none yet: the policy scores relay paths for destinations with traffic and two or more relays to choose from" }));
      else
        fill(scores, ...r.scores.map((x) => {
          const rw = x.reward === null ? null : Math.max(0, Math.min(1, x.reward));
          return h("span", { class: `score${x.chosen ? " chosen" : ""}`, title: `to ${x.name || short(x.peer)}: last reward ${x.reward ?? "–"}, UCB index ${x.index ?? "untried"}, chosen in ${x.choices} rounds` },
            h("b", { text: x.name || short(x.peer) }), ` ${rw === null ? "–" : rw.toFixed(2)} · ${x.index === null ? "untried" : x.index.toFixed(2)}`,
            h("span", { class: "bar", "aria-hidden": "true" }, h("i", { width: `${Math.round((rw || 0) * 100)}%` })));
        }));
    }
    tr.classList.toggle("sel", selected === r.id);
  });
  order(tbody, list.map((r) => rows.relays.get(r.id)));
  setText($("relays-count"), v.relays.length ? String(v.relays.length) : "");
  $("relays-empty").hidden = v.relays.length > 0;
  const w = v.weights;
  setText($("weights"), `Path policy: discounted UCB over relay paths; reward weights latency ${w.latency}, loss ${w.loss}, goodput ${w.goodput}. A live direct link is preferred while its loss is within 0.2 of the best relay's.`);
}

function renderEvents(v) {
  const ol = $("events");
  const key = JSON.stringify(v.events.map((e) => [e.t, e.text]));
  if (ol.dataset.key !== key) {
    ol.dataset.key = key;
    fill(ol, ...v.events.map((e) => h("li", { class: e.kind }, h("time", { datetime: new Date(e.t).toISOString(), text: clock(e.t) }), h("span", { class: "who", text: e.name || short(e.peer) }), h("span", { class: "what", text: e.text }))));
  }
  $("events-empty").hidden = v.events.length > 0;
}

// ---- live ------------------------------------------------------------------------------------------
function render(v) {
  current = v;
  lastAt = Date.now();
  renderNode(v);
  renderMesh(v);
  renderPeers(v);
  renderRelays(v);
  renderEvents(v);
  live(true);
}

function live(on) {
  const e = $("live");
  e.classList.toggle("on", on);
  e.classList.toggle("off", !on);
  setText($("live-text"), on ? "live" : "reconnecting…");
}

setInterval(() => {
  if (!lastAt) return;
  const age = Date.now() - lastAt;
  setText($("updated"), `updated ${clock(lastAt)}`);
  if (age > STALE_MS) live(false);
}, 500);

function poll() {
  fetch("/v1/view", { cache: "no-store" })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(String(r.status)))))
    .then(render, () => live(false))
    .finally(() => setTimeout(poll, 1000));
}

function start() {
  if (!("EventSource" in window)) return poll();
  const es = new EventSource("/v1/view/events");
  es.addEventListener("view", (ev) => render(JSON.parse(ev.data)));
  es.addEventListener("error", () => live(false));
}

start();
