// The agent's desk: its card over Server-Sent Events (/events), the state buttons, the
// message and order forms of the call, and the delivery status of what was saved.
// Text goes in with textContent only; the forms are our own escaped templates.
"use strict";
(function () {
  const desk = document.getElementById("desk");
  if (!desk) return;
  const csrf = desk.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const LABELS = {
    logged_out: "Logget ut av køen", idle: "Ledig", offered: "Telefonen ringer",
    on_call: "I samtale", wrap_up: "Etterarbeid", paused: "Pause",
  };
  let card = null;
  let skew = 0; // server time minus our time, in ms
  let shownCall = null;
  let formCall = null;
  let statusTimer = null;

  function seconds(fromIso) {
    return Math.max(0, Math.round((Date.now() + skew - Date.parse(fromIso)) / 1000));
  }

  function tick() {
    if (card && card.call) $("pop-waited").textContent = String(seconds(card.call.arrived_at));
    if (card && card.wrap_up_until) {
      const left = Math.max(0, Math.round((Date.parse(card.wrap_up_until) - Date.now() - skew) / 1000));
      $("wrapup-left").textContent = String(left);
    }
  }
  setInterval(tick, 1000);

  function show(next) {
    card = next;
    skew = Date.parse(next.now) - Date.now();
    $("agent-state").textContent = LABELS[next.state] || next.state;
    $("phone-state").textContent = next.reachable ? "" : "(telefonen svarer ikke)";
    $("wrapup").hidden = !next.wrap_up_until;
    const s = next.state;
    $("btn-login").hidden = s !== "logged_out";
    $("btn-logout").hidden = s === "logged_out";
    $("btn-pause").hidden = s === "logged_out" || s === "paused";
    $("btn-resume").hidden = s !== "paused";
    const call = next.call;
    if (call) {
      $("pop").hidden = false;
      $("pop-state").textContent = s === "offered" ? "Ringer nå" : "I samtale";
      $("pop-customer").textContent = call.customer_name;
      $("pop-greeting").textContent = call.greeting;
      $("pop-caller").textContent = call.caller;
      $("pop-kb").href = "/customers/" + call.customer_id + "/kb";
      $("call-forms").hidden = s !== "on_call";
      if (shownCall !== call.record_id) {
        shownCall = call.record_id;
        loadContext(call.record_id);
      }
      if (s === "on_call" && formCall !== call.record_id) {
        formCall = call.record_id;
        loadForm(call.record_id, "message");
      }
    } else {
      $("pop").hidden = true;
      shownCall = null;
    }
    tick();
  }

  function item(list, text, href) {
    const li = document.createElement("li");
    if (href) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      li.appendChild(a);
    } else {
      li.textContent = text;
    }
    list.appendChild(li);
  }

  function when(iso) {
    return new Date(iso).toLocaleString("nb-NO", { dateStyle: "short", timeStyle: "short" });
  }

  async function loadContext(recordId) {
    const calls = $("pop-calls"), messages = $("pop-messages"), pages = $("pop-pages");
    calls.replaceChildren();
    messages.replaceChildren();
    pages.replaceChildren();
    const r = await fetch("/calls/" + recordId + "/context", { headers: { "X-Requested-With": "fetch" } });
    if (!r.ok || shownCall !== recordId) return;
    const data = await r.json();
    for (const c of data.calls) item(calls, "Samtale " + when(c.arrived_at) + (c.outcome ? " (" + c.outcome + ")" : ""));
    for (const m of data.messages) item(messages, m.kind + " " + when(m.taken_at) + " – " + m.status, "/messages/" + m.id);
    if (!data.calls.length && !data.messages.length) item(calls, "Ingen tidligere samtaler eller meldinger.");
    for (const p of data.pages) item(pages, p.title + (p.stale ? " (ikke gjennomgått på over 90 dager)" : ""), p.url);
    if (!data.pages.length) item(pages, "Ingen sider ennå.");
  }

  async function loadForm(recordId, kind) {
    const r = await fetch("/calls/" + recordId + "/form/" + kind, { headers: { "X-Requested-With": "fetch" } });
    if (r.ok) placeForm(await r.text());
  }

  function placeForm(html) {
    const area = $("form-area");
    area.innerHTML = html; // our own template, every value escaped by Jinja
    const form = $("call-form");
    if (form) {
      form.addEventListener("submit", submit);
      const wrong = form.querySelector("[aria-invalid=true]");
      if (wrong) wrong.focus();
    }
    const saved = $("saved");
    if (saved) followStatus(saved.dataset.message);
  }

  async function submit(event) {
    event.preventDefault();
    const form = event.target;
    const r = await fetch(form.action, {
      method: "POST", body: new FormData(form),
      headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrf },
    });
    placeForm(await r.text());
  }

  function followStatus(messageId) {
    if (statusTimer) clearTimeout(statusTimer);
    const started = Date.now();
    const poll = async () => {
      const r = await fetch("/messages/" + messageId + "/status", { headers: { "X-Requested-With": "fetch" } });
      if (r.ok) {
        const s = await r.json();
        const el = $("delivery-status");
        if (!el) return;
        el.textContent = s.label;
        el.dataset.status = s.status;
        const log = $("delivery-log");
        log.replaceChildren();
        for (const e of s.log) item(log, when(e.at) + " " + e.status + (e.channel ? " (" + e.channel + ")" : "") + (e.result ? ": " + e.result : ""));
        if (s.final) return;
      }
      if (Date.now() - started < 10 * 60 * 1000) statusTimer = setTimeout(poll, 1500);
    };
    poll();
  }

  for (const b of document.querySelectorAll("button[data-kind]")) {
    b.addEventListener("click", () => { if (card && card.call) loadForm(card.call.record_id, b.dataset.kind); });
  }
  for (const b of document.querySelectorAll("button[data-action]")) {
    b.addEventListener("click", async () => {
      $("action-error").textContent = "";
      const r = await fetch("/agent/" + b.dataset.action, {
        method: "POST", headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrf },
      });
      if (!r.ok) $("action-error").textContent = (await r.text()) || "Det gikk ikke.";
    });
  }

  const source = new EventSource("/events");
  source.addEventListener("agent", (e) => show(JSON.parse(e.data)));
  source.addEventListener("open", () => { $("feed-state").textContent = ""; });
  source.addEventListener("error", () => { $("feed-state").textContent = "Forbindelsen er brutt – kobler til igjen …"; });
})();
