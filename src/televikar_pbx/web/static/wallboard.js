// The supervisor's wallboard over Server-Sent Events (/wallboard/events).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const LABELS = {
    logged_out: "Logget ut", idle: "Ledig", offered: "Ringer", on_call: "I samtale",
    wrap_up: "Etterarbeid", paused: "Pause",
  };
  let board = null;
  let sla = {};
  let silent = {};  // customer id -> the forwarding watch's figures (flagged only)

  function pct(value, target, met, lower) {
    if (value === null || value === undefined) return "–";
    const text = value.toFixed(1).replace(".", ",") + " % (mål " + (lower ? "≤ " : "≥ ") + target + " %)";
    return (met === false ? "⚠ " : "") + text;
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function ago(seconds) {
    return seconds < 90 ? Math.round(seconds) + " s" : Math.round(seconds / 60) + " min";
  }

  function renderForwarding() {
    const list = $("forwarding-flagged");
    list.replaceChildren();
    const flagged = Object.values(silent);
    $("forwarding").hidden = flagged.length === 0;
    for (const c of flagged) {
      const li = document.createElement("li");
      li.dataset.customer = c.id;
      const last = new Date(c.last_call).toLocaleTimeString("nb-NO", { hour: "2-digit", minute: "2-digit" });
      li.textContent = c.name + ": siste anrop kl. " + last + " (" + ago(c.silent_s) + " siden), "
        + "ventet " + c.expected_since_last_call.toFixed(1).replace(".", ",") + " anrop"
        + (c.open_now ? "" : " – stengt nå");
      list.appendChild(li);
    }
  }

  function render() {
    renderForwarding();
    if (!board) return;
    const customers = $("board-customers").tBodies[0];
    customers.replaceChildren();
    for (const c of board.customers) {
      const tr = document.createElement("tr");
      tr.dataset.customer = c.id;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = silent[c.id] ? "⚠ " + c.name + " (ingen anrop)" : c.name;
      if (silent[c.id]) tr.className = "silent";
      tr.appendChild(th);
      cell(tr, String(c.waiting), c.waiting ? "waiting" : "");
      cell(tr, c.waiting ? String(Math.round(c.longest_wait_s)) : "–");
      const s = sla[c.id];
      cell(tr, s ? pct(s.sl12_pct, s.sl12_target, s.sl12_met) : "–", s && s.sl12_met === false ? "bad" : "");
      cell(tr, s ? pct(s.sl20_pct, s.sl20_target, s.sl20_met) : "–", s && s.sl20_met === false ? "bad" : "");
      cell(tr, s ? pct(s.lost_pct, s.lost_target, s.lost_met, true) : "–", s && s.lost_met === false ? "bad" : "");
      customers.appendChild(tr);
    }
    const agents = $("board-agents").tBodies[0];
    agents.replaceChildren();
    for (const a of board.agents) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = a.name;
      tr.appendChild(th);
      cell(tr, LABELS[a.state] || a.state, "state-" + a.state);
      cell(tr, a.reachable ? "OK" : "Svarer ikke", a.reachable ? "" : "bad");
      agents.appendChild(tr);
    }
    $("board-updated").textContent = "Oppdatert " + new Date().toLocaleTimeString("nb-NO");
  }

  const source = new EventSource("/wallboard/events");
  source.addEventListener("board", (e) => { board = JSON.parse(e.data); render(); });
  source.addEventListener("sla", (e) => {
    sla = {};
    for (const c of JSON.parse(e.data).customers) sla[c.id] = c;
    render();
  });
  source.addEventListener("forwarding", (e) => {
    silent = {};
    for (const c of JSON.parse(e.data).flagged) silent[c.id] = c;
    render();
  });
  source.addEventListener("error", () => { $("board-updated").textContent = "Forbindelsen er brutt – kobler til igjen …"; });
})();
