// Flowgate admin page: the little JavaScript the server-rendered pages need.
// - follows the gateway's SSE event stream and re-fetches the page's server-rendered
//   fragments (`data-frag`) when something changes: live updates without polling;
// - sends `data-api` forms to the JSON API as JSON, with the session's CSRF token;
// - the flow editor: save with problems shown at their action, dry run.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  async function api(method, path, body) {
    const opts = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch("/admin/api" + path, opts);
    let json = null;
    try { json = await r.json(); } catch (_) { /* 204 or not JSON */ }
    return { ok: r.ok, status: r.status, json };
  }

  function say(el, text, cls) {
    if (!el) return;
    el.textContent = text;
    el.className = "status " + (cls || "");
  }

  function errorText(res) {
    const j = res.json || {};
    let t = (j.message || ("HTTP " + res.status));
    if (Array.isArray(j.problems) && j.problems.length) {
      t += ": " + j.problems.map(p => (p.path ? p.path + ": " : "") + p.message).join("; ");
    }
    return t;
  }

  // ---- fragments, refreshed on events ----
  const frags = () => Array.from(document.querySelectorAll("[data-frag]"));
  let pending = null;
  function refresh() {
    if (pending) return;
    // Coalesce a burst of events (an SMS exchange is several) into one round of fetches.
    pending = setTimeout(async () => {
      pending = null;
      for (const el of frags()) {
        if (el.contains(document.activeElement) && el.querySelector("input:focus, textarea:focus, select:focus")) continue;
        const r = await fetch("/admin/frag/" + el.dataset.frag + (el.dataset.query || ""), { credentials: "same-origin" });
        if (r.status === 401) { location.href = "/admin/login"; return; }
        if (r.ok) el.innerHTML = await r.text();
      }
      tick();
    }, 150);
  }

  // Durations of live calls tick locally (no request per second).
  function tick() {
    for (const el of document.querySelectorAll("[data-since]")) {
      const t = Date.parse(el.dataset.since);
      if (isNaN(t)) continue;
      const s = Math.max(0, Math.round((Date.now() - t) / 1000));
      el.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    }
  }
  setInterval(tick, 1000);

  // ---- the event stream ----
  const feed = document.getElementById("feed-state");
  const eventsLog = document.getElementById("events-log");
  const filter = document.getElementById("events-filter");
  // The newest event the log shows: the stream may replay a few the page was rendered with.
  let shownSeq = Number(eventsLog?.querySelector("tr td")?.textContent) || 0;
  function showEvent(ev) {
    if (!eventsLog) return;
    let data;
    try { data = JSON.parse(ev.data); } catch (_) { return; }
    if (typeof data.seq === "number") {
      if (data.seq <= shownSeq) return;
      shownSeq = data.seq;
    }
    const tr = document.createElement("tr");
    tr.dataset.type = data.type || ev.type;
    for (const v of [data.seq, data.time, data.type, data.resource_id]) {
      const td = document.createElement("td");
      td.textContent = v === undefined ? "" : String(v);
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    const pre = document.createElement("pre");
    const text = JSON.stringify(data.data);
    pre.textContent = text.length > 240 ? text.slice(0, 240) + "…" : text;
    td.appendChild(pre);
    tr.appendChild(td);
    applyFilter(tr);
    eventsLog.prepend(tr);
    while (eventsLog.children.length > 300) eventsLog.lastElementChild.remove();
  }
  function applyFilter(tr) {
    const f = (filter?.value || "").trim().toLowerCase();
    tr.hidden = f !== "" && !tr.textContent.toLowerCase().includes(f);
  }
  filter?.addEventListener("input", () => eventsLog?.querySelectorAll("tr").forEach(applyFilter));

  const kinds = (document.body.dataset.kinds || "").split(",").filter(Boolean);
  if (kinds.length) {
    // From the newest event before the page was rendered: what changed between the rendering
    // and the stream's opening (a call that arrived meanwhile) is replayed, not lost.
    const after = document.body.dataset.after;
    const es = new EventSource("/admin/api/v1.0/gateway/events/stream" + (after ? "?after=" + encodeURIComponent(after) : ""));
    es.onopen = () => { if (feed) { feed.textContent = "live"; feed.className = "ok"; } };
    es.onerror = () => { if (feed) { feed.textContent = "reconnecting"; feed.className = "warn"; } };
    const on = ev => { showEvent(ev); refresh(); };
    for (const k of kinds) es.addEventListener(k, on);
    es.onmessage = on;
    // Close the stream when leaving the page: a browser allows six connections per host, and
    // streams of pages kept in its back/forward cache would otherwise hold them.
    window.addEventListener("pagehide", () => es.close());
  }

  // ---- forms sent to the API ----
  function setPath(obj, path, value) {
    const keys = path.split(".");
    let o = obj;
    keys.forEach((k, i) => {
      const last = i === keys.length - 1;
      const nextIsIndex = !last && /^\d+$/.test(keys[i + 1]);
      if (last) o[k] = value;
      else o = (o[k] = o[k] || (nextIsIndex ? [] : {}));
    });
  }

  document.addEventListener("submit", async e => {
    const form = e.target;
    if (!form.dataset.api) return;
    e.preventDefault();
    const out = form.querySelector(".status");
    let [method, path] = form.dataset.api.split(" ");
    const body = {};
    let hasBody = false;
    for (const el of form.elements) {
      if (!el.name || el.disabled || (el.type === "checkbox" && !el.checked)) continue;
      const marker = "{" + el.name + "}";
      if (path.includes(marker)) { path = path.replace(marker, encodeURIComponent(el.value)); continue; }
      if (el.value === "" && !el.dataset.keep) continue;
      let v = el.value;
      if (el.dataset.kind === "number") v = Number(v);
      if (el.dataset.kind === "json") { try { v = JSON.parse(v); } catch (err) { say(out, el.name + ": " + err.message, "bad"); return; } }
      setPath(body, el.name, v);
      hasBody = true;
    }
    say(out, "Working…");
    const button = form.querySelector("button");
    if (button) button.disabled = true;
    try {
      const res = await api(method, path, hasBody || method !== "GET" && method !== "DELETE" ? body : undefined);
      if (res.ok) {
        let text = form.dataset.done || "Done.";
        if (form.dataset.show && res.json) text += " " + (res.json[form.dataset.show] ?? "");
        say(out, text, "ok");
        if (form.dataset.reset !== undefined) form.reset();
        if (form.dataset.go && res.json?.id) location.href = form.dataset.go + res.json.id;
        refresh();
      } else {
        say(out, errorText(res), "bad");
      }
    } catch (err) {
      say(out, "The gateway did not answer: " + err.message, "bad");
    } finally {
      if (button) button.disabled = false;
    }
  });

  // ---- the flow editor ----
  const editor = document.getElementById("flow-json");
  if (editor) {
    const outline = document.getElementById("flow-outline");
    const out = document.getElementById("flow-status");
    function drawOutline(problems) {
      let flow;
      try { flow = JSON.parse(editor.value); } catch (err) { outline.innerHTML = ""; return; }
      outline.innerHTML = "";
      const byIndex = new Map();
      const other = [];
      for (const p of problems || []) {
        const m = /^actions\[(\d+)\]/.exec(p.path || "");
        if (m) { const i = Number(m[1]); if (!byIndex.has(i)) byIndex.set(i, []); byIndex.get(i).push(p); } else other.push(p);
      }
      (Array.isArray(flow.actions) ? flow.actions : []).forEach((a, i) => {
        const li = document.createElement("li");
        li.id = "action-" + i;
        const title = document.createElement("span");
        title.textContent = (a && a.type ? a.type : "(no type)") + (a && a.id ? " · " + a.id : "");
        li.appendChild(title);
        for (const p of byIndex.get(i) || []) {
          li.classList.add("has-error");
          const s = document.createElement("span");
          s.className = "err";
          s.textContent = p.path + ": " + p.message;
          li.appendChild(s);
        }
        outline.appendChild(li);
      });
      const general = document.getElementById("flow-problems");
      general.innerHTML = "";
      for (const p of other) {
        const li = document.createElement("li");
        li.textContent = (p.path ? p.path + ": " : "") + p.message;
        general.appendChild(li);
      }
    }
    drawOutline([]);
    editor.addEventListener("change", () => drawOutline([]));
    document.getElementById("flow-save")?.addEventListener("click", async () => {
      let flow;
      try { flow = JSON.parse(editor.value); } catch (err) { say(out, "Not JSON: " + err.message, "bad"); return; }
      const id = editor.dataset.id;
      say(out, "Saving…");
      const res = id ? await api("PUT", "/v1.0/flows/" + id, flow) : await api("POST", "/v1.0/flows", flow);
      if (res.ok) {
        drawOutline([]);
        say(out, "Saved.", "ok");
        if (!id && res.json?.id) location.href = "/admin/flows/" + res.json.id;
      } else {
        drawOutline(res.json?.problems || []);
        say(out, errorText(res), "bad");
        document.querySelector("#flow-outline .has-error")?.scrollIntoView({ block: "nearest" });
      }
    });
    document.getElementById("dryrun-form")?.addEventListener("submit", async e => {
      e.preventDefault();
      const f = e.target;
      const result = document.getElementById("dryrun-result");
      result.textContent = "Running…";
      const r = await fetch("/admin/dryrun", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ flow: editor.value, reference: f.reference.value, inputs: f.inputs.value, variables: f.variables.value }),
      });
      // The server renders the trace (escaped); anything else is shown as plain text.
      if (r.ok) result.innerHTML = await r.text(); else result.textContent = "Refused: HTTP " + r.status + " " + await r.text();
    });
  }
  tick();
})();
