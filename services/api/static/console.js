// The review console's behaviour: SLA timers, keyboard, claim + lease renewal, verdicts.
// No build step and no inline script (the pages' Content-Security-Policy forbids it).
"use strict";

const csrf = () => document.body.dataset.csrf || "";

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? "{}" : JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  return { ok: response.ok, status: response.status, data };
}

function fmt(seconds) {
  const sign = seconds < 0 ? "-" : "";
  let s = Math.abs(Math.trunc(seconds));
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return h ? `${sign}${h}h${String(m).padStart(2, "0")}m` : `${sign}${m}m${String(s).padStart(2, "0")}s`;
}

function startSlaTimers() {
  const started = Date.now();
  const cells = [...document.querySelectorAll("[data-sla-remaining]")];
  const tick = () => {
    const gone = (Date.now() - started) / 1000;
    for (const cell of cells) {
      const left = parseFloat(cell.dataset.slaRemaining) - gone;
      cell.textContent = fmt(left);
      cell.classList.toggle("late", left < 0);
      cell.classList.toggle("soon", left >= 0 && left < 600);
    }
  };
  tick();
  setInterval(tick, 1000);
}

const typing = (event) => ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName);

function queuePage() {
  const rows = [...document.querySelectorAll("#queue tr.row")];
  let at = rows.length ? 0 : -1;
  const select = (i) => {
    if (!rows.length) return;
    at = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((r, j) => r.classList.toggle("selected", j === at));
    rows[at].scrollIntoView({ block: "nearest" });
  };
  select(0);
  rows.forEach((row, i) => row.addEventListener("click", (e) => {
    if (e.target.tagName !== "A") { select(i); window.location = row.dataset.href; }
  }));
  document.addEventListener("keydown", (e) => {
    if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j") select(at + 1);
    else if (e.key === "k") select(at - 1);
    else if (e.key === "Enter" && at >= 0) window.location = rows[at].dataset.href;
  });
  // the queue moves under the analyst's feet: reload it while nobody types
  setInterval(() => { if (!document.activeElement || document.activeElement === document.body) window.location.reload(); }, 15000);
}

function casePage() {
  const root = document.getElementById("case");
  const id = root.dataset.case;
  const status = document.getElementById("status");
  const note = document.getElementById("note");
  const buttons = [...document.querySelectorAll(".actions button")];
  let mine = false;
  let renew = null;

  const show = (text, kind) => {
    status.textContent = text;
    status.className = "status " + (kind || "");
  };
  const enable = (on) => buttons.forEach((b) => { b.disabled = !on; });
  const go = (where) => { window.location = where ? `/console/cases/${where}` : "/console"; };

  async function claim() {
    const r = await post(`/console/cases/${id}/claim`);
    if (r.ok) {
      mine = true;
      enable(true);
      show(`claimed by you (${root.dataset.analyst})`, "mine");
      return;
    }
    mine = false;
    enable(false);
    clearInterval(renew);
    show(r.status === 409 ? `refused: ${r.data.detail}` : `cannot claim: ${r.data.detail || r.status}`, "refused");
  }

  async function verdict(value) {
    if (!mine) return;
    enable(false);
    const text = note.value.trim();
    const r = await post(`/console/cases/${id}/verdict`, { verdict: value, note: text || null });
    if (!r.ok) { show(`refused: ${r.data.detail || r.status}`, "refused"); enable(true); return; }
    mine = false;
    clearInterval(renew);
    show(r.data.action === "proposed" ? "proposed: waits for a second analyst" : `${r.data.state}: ${value}`, "mine");
    setTimeout(() => go(root.dataset.next !== id ? root.dataset.next : ""), 400);
  }

  async function addNote() {
    const text = note.value.trim();
    if (!text) { note.focus(); return; }
    const r = await post(`/console/cases/${id}/note`, { text });
    if (r.ok) window.location.reload(); else show(`note refused: ${r.data.detail || r.status}`, "refused");
  }

  for (const b of document.querySelectorAll("[data-verdict]")) b.addEventListener("click", () => verdict(b.dataset.verdict));
  document.getElementById("add-note").addEventListener("click", addNote);
  document.getElementById("release").addEventListener("click", async () => {
    const r = await post(`/console/cases/${id}/release`);
    if (r.ok) go("");
  });
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e)) { if (e.key === "Escape") e.target.blur(); return; }
    const keys = { f: () => verdict("fraud"), l: () => verdict("legit"), e: () => verdict("escalate"),
      n: () => { e.preventDefault(); note.focus(); },
      j: () => go(root.dataset.next), k: () => go(root.dataset.previous) };
    if (keys[e.key]) keys[e.key]();
  });

  enable(false);
  if (root.dataset.state === "resolved") { show(`resolved`, ""); return; }
  claim();
  const every = Math.max(10, parseFloat(root.dataset.leaseS) / 3) * 1000;
  renew = setInterval(() => { if (mine) claim(); }, every);
}

document.addEventListener("DOMContentLoaded", () => {
  startSlaTimers();
  const page = document.body.dataset.page;
  if (page === "queue") queuePage();
  if (page === "case") casePage();
});
