// The crew's tablet page: start and close the case, publish the unit's status, see the link and
// the tablet's buffer as the hub sees them, the case's alarms (and who acknowledged them), the
// consult room's advice and decisions, and join the consult.

import { api, claims, clearToken, currentToken, loginForm } from "../js/session.js";
import { LiveSocket } from "../js/live.js";
import { CaseFeed } from "./case_feed.js";
import { renderAlarms, renderAdvice, renderLink } from "./panels.js";

const $ = (id) => document.getElementById(id);
const STATUSES = ["available", "dispatched", "en_route", "on_scene", "transporting", "at_hospital", "out_of_service"];
let unitId = null, unit = null, receivedAt = 0, localCase = null;
let fleetSocket = null, feed = null;

window.ambulinkCrew = { unit: () => unit, caseId: () => currentCase() };

function currentCase() { return unit?.case_id ?? localCase; }

// A case started here but not yet tied to the unit by the hub (that happens with its first ECG)
// survives a reload of the page.
function rememberCase(caseId) {
  localCase = caseId;
  const key = `ambulink.crew.case.${unitId}`;
  if (caseId) sessionStorage.setItem(key, caseId); else sessionStorage.removeItem(key);
}

function say(message, error = false) {
  $("notice").textContent = message;
  $("notice").classList.toggle("error", error);
}

function onFleet(message) {
  const next = message.type === "fleet" ? message.units?.find((u) => u.unit_id === unitId)
    : message.type === "unit" && message.unit?.unit_id === unitId ? message.unit : null;
  if (!next) return;
  if (next.case_id && localCase) rememberCase(null);
  unit = next; receivedAt = Date.now();
  render();
}

function render() {
  const caseId = currentCase();
  $("case-id").textContent = caseId ? caseId.slice(0, 8) : "no case";
  $("case-id").dataset.caseId = caseId ?? "";
  $("start-case").hidden = Boolean(caseId);
  $("close-case").hidden = !caseId || !$("confirm-row").hidden;
  $("consult").hidden = !caseId;
  if (caseId) $("consult").href = `/consult?case=${encodeURIComponent(caseId)}#token=${encodeURIComponent(currentToken() ?? "")}`;
  for (const button of $("statuses").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(unit?.status === button.dataset.status));
  }
  $("status-now").textContent = unit ? unit.status.replace(/_/g, " ") : "—";
  renderLink($("link"), unit, dataAge());
  if (feed?.caseId !== caseId) {
    feed?.stop();
    feed = caseId ? new CaseFeed(caseId, { onChange: renderFeed, onState: (s) => { $("conn-room").textContent = `consult room: ${s}`; $("conn-room").dataset.state = s; } }).start() : null;
    renderFeed();
  }
}

function renderFeed() {
  renderAlarms($("alarms"), feed ? [...feed.alarms.values()] : [], (id) => feed?.ack(id));
  renderAdvice($("advice"), feed ? feed.timeline.filter((e) => e.kind === "advice" || e.kind === "decision") : []);
}

/** The data age at the hub, ticking between updates (null when no ECG is stored yet). */
function dataAge() {
  if (unit?.data_age_s == null) return null;
  return unit.data_age_s + (Date.now() - receivedAt) / 1000;
}

async function setStatus(status, button) {
  button.classList.add("pending");
  try {
    unit = await api(`/api/units/${encodeURIComponent(unitId)}/status`, { method: "POST", body: { status } });
    receivedAt = Date.now();
    say(`status: ${status.replace(/_/g, " ")}`);
    render();
  } catch (error) { say(`status not sent: ${error.message}`, true); }
  finally { button.classList.remove("pending"); }
}

async function startCase() {
  try {
    const reply = await api("/api/cases", { method: "POST", body: { unit_id: unitId } });
    rememberCase(reply.case_id);
    say(`case ${reply.case_id.slice(0, 8)} started`);
    render();
  } catch (error) { say(`case not started: ${error.message}`, true); }
}

async function closeCase() {
  const caseId = currentCase();
  $("confirm-row").hidden = true;
  try {
    await api(`/api/cases/${encodeURIComponent(caseId)}/close`, { method: "POST", body: {} });
    rememberCase(null);
    if (unit) unit = { ...unit, case_id: null };
    say(`case ${caseId.slice(0, 8)} closed`);
  } catch (error) { say(`case not closed: ${error.message}`, true); }
  render();
}

function start() {
  unitId = claims(currentToken())?.unit;
  localCase = sessionStorage.getItem(`ambulink.crew.case.${unitId}`);
  $("login").hidden = true;
  $("app").hidden = false;
  $("unit").textContent = unitId;
  $("statuses").replaceChildren(...STATUSES.map((status) => {
    const button = document.createElement("button");
    button.dataset.status = status;
    button.className = `status s-${status}`;
    button.textContent = status.replace(/_/g, " ");
    button.addEventListener("click", () => setStatus(status, button));
    return button;
  }));
  fleetSocket = new LiveSocket("/ws/fleet", onFleet, {
    onState: (s, detail) => {
      $("conn-hub").textContent = s === "retrying" ? `hub: reconnecting in ${detail} s` : `hub: ${s}`;
      $("conn-hub").dataset.state = s;
      if (s === "refused") { clearToken(); showLogin(detail); }
    },
  }).start();
  api(`/api/units/${encodeURIComponent(unitId)}`).then((u) => { if (!unit) { unit = u; receivedAt = Date.now(); render(); } })
    .catch((error) => say(`unit not found: ${error.message}`, true));
  render();
}

const showLoginForm = loginForm(
  () => ({ role: "crew", unit: $("unit-input").value.trim(), name: "tablet" }), start);

function showLogin(why = "") {
  fleetSocket?.stop(); feed?.stop(); feed = null;
  showLoginForm(why);
}
$("start-case").addEventListener("click", startCase);
$("close-case").addEventListener("click", () => { $("confirm-row").hidden = false; render(); });
$("cancel-close").addEventListener("click", () => { $("confirm-row").hidden = true; render(); });
$("confirm-close").addEventListener("click", closeCase);
setInterval(() => { if (unit) renderLink($("link"), unit, dataAge()); }, 500);

const token = claims(currentToken());
if (token?.role === "crew" && token.unit) start(); else showLogin();
