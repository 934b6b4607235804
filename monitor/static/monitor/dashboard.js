"use strict";
// Every value shown here may come from a tenant (a task's model, a log line, an event): it
// reaches the page as text (textContent, createElement), never as markup. The page's CSP
// (script-src 'self') forbids inline script and handlers besides.
const $ = (id) => document.getElementById(id);
const history = [];           // [{t, used, total, util}]
let current = null, tokenCount = 0;

async function api(path) {
  const r = await fetch(path, {credentials: "same-origin", headers: {Accept: "application/json"}});
  if (!r.ok) throw new Error(path + " " + r.status);
  return r.json();
}

function text(el, value) { el.textContent = value == null ? "—" : String(value); }

function row(cells) {               // a <tr> of text cells
  const tr = document.createElement("tr");
  for (const value of cells) {
    const td = document.createElement("td");
    td.textContent = value == null ? "" : String(value);
    tr.append(td);
  }
  return tr;
}

function fill(tbody, rows, empty, columns) {   // rows or one "empty" row spanning the table
  if (!rows.length) {
    const tr = row([empty]);
    tr.firstChild.colSpan = columns;
    rows = [tr];
  }
  tbody.replaceChildren(...rows);
}

async function refresh() {               // a REST snapshot: pub/sub does not replay
  try {
    const [status, queue, logs] = await Promise.all([
      api("/api/v1/monitor/status"), api("/api/v1/monitor/queue"),
      api("/api/v1/monitor/logs?limit=50")]);
    showSummary(status);
    showGpu(status.gpu);
    showQueue(queue);
    showBatches(status.batches);
    $("logs").replaceChildren();
    logs.logs.slice().reverse().forEach(addLog);
  } catch (e) { console.warn(e); }
}

function showSummary(status) {
  const t = status.today || {};
  text($("summary"), `today: ${t.created || 0} created · ${t.completed || 0} completed · ` +
       `${t.failed || 0} failed · ${t.cancelled || 0} cancelled`);
  text($("model"), status.loaded_model ? status.loaded_model.name : "none");
  const slots = (status.loaded_model || {}).slots;
  text($("slots"), slots ? `${slots.busy ?? "?"} busy of ${slots.total}` +
       (slots.waiting ? ` · ${slots.waiting} waiting` : "") : "—");
}

function showQueue(queue) {
  const rows = [];
  for (const [lane, info] of Object.entries(queue.lanes)) {
    for (const p of info.pending.slice(0, 20)) {
      rows.push(row([p.position, lane, String(p.task_id).slice(0, 8), p.priority, p.model || ""]));
    }
  }
  fill($("queue"), rows, "empty", 5);
}

function showBatches(b) {
  if (!b) return;
  const rows = b.list.map((x) => row([x.id, x.status, x.endpoint, x.request_counts.completed,
    x.request_counts.failed, x.request_counts.total, new Date(x.expires_at * 1000).toLocaleString()]));
  fill($("batches"), rows, "no active batch", 7);
}

function showGpu(g) {
  if (!g) return;
  if (!g.available) { text($("gpu-name"), g.reason || "no GPU"); text($("gpu-mem"), "—");
                      text($("gpu-util"), "—"); return; }
  text($("gpu-name"), g.name);
  text($("gpu-mem"), `${g.memory_used_mb} / ${g.memory_total_mb} MB`);
  text($("gpu-util"), `${g.utilization_percent}% · ${g.temperature_c} °C`);
  history.push({used: g.memory_used_mb, total: g.memory_total_mb, util: g.utilization_percent});
  if (history.length > 90) history.shift();
  draw();
}

function draw() {
  const c = $("chart"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  const series = [["used", "#3158d4", (h) => h.used / h.total], ["util", "#1a7f37", (h) => h.util / 100]];
  for (const [, colour, f] of series) {
    ctx.strokeStyle = colour; ctx.beginPath();
    history.forEach((h, i) => {
      const x = (i / 89) * c.width, y = c.height - f(h) * (c.height - 4) - 2;
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
  }
}

const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

function addLog(r) {
  const div = document.createElement("div");
  if (LEVELS.includes(r.level)) div.className = r.level;
  const at = typeof r.at === "number" ? new Date(r.at * 1000).toISOString() : String(r.at || "");
  div.textContent = `${at.slice(11, 19)} ${r.level} ${r.logger}: ${r.message}`;
  $("logs").prepend(div);
  while ($("logs").childNodes.length > 200) $("logs").lastChild.remove();
}

function addEvent(e) {
  const subject = String(e.task_id || e.batch_id || e.model || "").slice(0, 12);
  $("events").prepend(row([new Date(e.at * 1000).toLocaleTimeString(), e.type, subject]));
  while ($("events").childNodes.length > 15) $("events").lastChild.remove();
}

function startTask(taskId) {
  current = taskId; tokenCount = 0; $("tokens").textContent = "";
  text($("cur-id"), taskId); text($("cur-status"), "processing"); text($("cur-count"), 0);
}

function onToken(e) {
  if (!current || current !== e.task_id) startTask(e.task_id);
  $("tokens").textContent += e.text; tokenCount += e.tokens || 1; text($("cur-count"), tokenCount);
  $("tokens").scrollTop = $("tokens").scrollHeight;
}

function onEvent(e) {
  if (e.type === "log") return addLog(e);
  if (e.type === "gpu.stats") return showGpu(e);
  if (e.type === "task.token") return onToken(e);
  addEvent(e);
  if (e.type === "task.started") {
    startTask(e.task_id);
    api(`/api/v1/tasks/${encodeURIComponent(e.task_id)}`)
      .then((t) => text($("cur-model"), `${t.provider} / ${t.model}`), console.warn);
  }
  if (["task.completed", "task.failed", "task.cancelled"].includes(e.type) && e.task_id === current) {
    text($("cur-status"), e.type.slice(5));
  }
  if (["task.", "model.", "batch."].some((p) => String(e.type).startsWith(p))) scheduleRefresh();
}

let pending = null;
function scheduleRefresh() { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 300); }

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/monitor`);
  ws.onopen = () => { $("conn").textContent = "live"; $("conn").className = "ok"; refresh(); };
  ws.onmessage = (m) => onEvent(JSON.parse(m.data));
  ws.onclose = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "bad";
                       setTimeout(connect, 1000); };
}
refresh();
connect();
