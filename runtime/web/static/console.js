// Rosey console: live updates over server-sent events. Every page works without this file;
// with it, the parts marked data-live refresh when records or deploys arrive.
(function () {
  "use strict";
  const live = Array.from(document.querySelectorAll("[data-live]"));
  const feed = document.getElementById("feed");
  if (!live.length && !feed) return;

  let timer = null;
  let running = false;
  let again = false;

  async function refresh() {
    if (running) { again = true; return; }
    running = true;
    try {
      const response = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (response.redirected || !response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const element of live) {
        const fresh = doc.getElementById(element.id);
        if (fresh) element.innerHTML = fresh.innerHTML;
      }
    } finally {
      running = false;
      if (again) { again = false; schedule(); }
    }
  }

  function schedule() {
    if (timer === null) timer = setTimeout(() => { timer = null; refresh(); }, 250);
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function showRecord(r) {
    const body = feed && feed.querySelector("tbody");
    if (!body) return;
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    const row = document.createElement("tr");
    row.className = r.outcome;
    cell(row, new Date(r.time * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC");
    cell(row, r.outcome).className = "outcome";
    cell(row, r.function);
    cell(row, r.version);
    cell(row, r.command ? "!" + r.command : r.kind);
    cell(row, r.user || "—");
    cell(row, (r.duration * 1000).toFixed(1) + " ms").className = "num";
    cell(row, r.error || r.reason || "");
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
  }

  const source = new EventSource("/activity/feed");
  const state = document.getElementById("feed-state");
  source.onopen = () => { if (state) state.textContent = "live"; document.body.dataset.feed = "open"; };
  source.onerror = () => { if (state) state.textContent = "reconnecting…"; };
  source.addEventListener("activation", (event) => {
    const record = JSON.parse(event.data);
    showRecord(record);
    const wanted = live.filter((e) => !e.dataset.function || e.dataset.function === record.function);
    if (wanted.length) schedule();
  });
  source.addEventListener("deploy", schedule);
  // What the feed does not carry (a resume from the command line, another runtime's state).
  setInterval(() => { if (live.length && !document.hidden) schedule(); }, 15000);
})();
