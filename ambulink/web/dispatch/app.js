// The dispatch page: signs in (dispatch role), follows /ws/fleet (units, hospitals, weather)
// and /ws/dispatch (alarms, acknowledgement), and renders the map, the unit list and a card.

import { api, claims, clearToken, currentToken, loginForm } from "../js/session.js";
import { FleetMap } from "./map.js";
import { UnitList, formatAge } from "./list.js";
import { UnitCard } from "./card.js";
import { FleetState } from "./state.js";
import { LiveSocket } from "../js/live.js";

const $ = (id) => document.getElementById(id);
const state = new FleetState();
const params = new URLSearchParams(location.search);
let selected = null;
let fleetSocket = null, alarmSocket = null;

const map = new FleetMap($("map"), { tiles: params.get("tiles"), onSelect: select });
const list = new UnitList($("units"), { onSelect: select });
const card = new UnitCard($("card"), { onAck: (alarmId) => alarmSocket?.send({ type: "alarm_ack", alarm_id: alarmId }) ?? false });

// For tests and debugging: the merged state and a render counter.
window.ambulinkDispatch = { state, map, renders: 0, selected: () => selected, render };

function select(unitId) { selected = unitId; render(); }

let scheduled = false;
function render() {
  if (scheduled) return;
  scheduled = true;
  setTimeout(() => {
    scheduled = false;
    map.render(state, selected);
    list.render(state, selected);
    card.render(state, selected);
    renderHospitals();
    $("counts").textContent = `${state.units.size} units · ${state.hospitals.size} hospitals`;
    window.ambulinkDispatch.renders += 1;
  }, 0);
}

// Hospitals and their "ready for arrival" state: a dispatcher sets it; every page sees it change
// over /ws/fleet (the checkbox follows the hub, not the click).
function renderHospitals() {
  const rows = [...state.hospitals.values()].sort((a, b) => a.name.localeCompare(b.name));
  const key = JSON.stringify(rows.map((h) => [h.hospital_id, h.ready]));
  if ($("hospitals").dataset.key === key) return;
  $("hospitals").dataset.key = key;
  $("hospitals").replaceChildren(...rows.map((h) => {
    const row = document.createElement("tr");
    row.dataset.hospitalId = h.hospital_id;
    const can = [h.cath_lab ? "cath lab" : null, h.stroke_unit ? "stroke unit" : null].filter(Boolean);
    const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: h.ready });
    box.setAttribute("aria-label", `${h.name} ready for arrival`);
    box.addEventListener("change", async () => {
      box.disabled = true;
      try {
        await api(`/api/hospitals/${encodeURIComponent(h.hospital_id)}/ready`, { method: "POST", body: { ready: box.checked } });
        $("hospital-error").textContent = "";
      } catch (error) {
        box.checked = !box.checked;
        $("hospital-error").textContent = `${h.name}: ${error.message}`;
      } finally { box.disabled = false; }
    });
    const cells = [h.name, can.join(", ") || "—"].map((text) => Object.assign(document.createElement("td"), { textContent: text }));
    const ready = document.createElement("td");
    ready.append(box);
    row.append(...cells, ready);
    return row;
  }));
}

function showConnection(which, stateName, detail) {
  const node = $(`conn-${which}`);
  node.dataset.state = stateName;
  node.textContent = `${which}: ${stateName === "retrying" ? `reconnecting in ${detail} s` : stateName === "refused" ? `refused (${detail})` : stateName}`;
  if (stateName === "refused") { clearToken(); showLogin(detail); }
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  fleetSocket = new LiveSocket("/ws/fleet", (m) => { if (state.applyFleet(m)) render(); },
    { onState: (s, d) => showConnection("fleet", s, d) }).start();
  alarmSocket = new LiveSocket("/ws/dispatch", (m) => { if (state.applyDispatch(m)) render(); },
    { onState: (s, d) => showConnection("alarms", s, d) }).start();
}

const showLoginForm = loginForm(() => ({ role: "dispatch", name: "dispatch" }), start);

function showLogin(why = "") {
  fleetSocket?.stop(); alarmSocket?.stop();
  showLoginForm(why);
}
$("sort").addEventListener("change", () => { list.sortBy = $("sort").value; render(); });
$("weather-toggle").addEventListener("change", () => { map.showWeather = $("weather-toggle").checked; render(); });
$("rings-toggle").addEventListener("change", () => { map.fitRings = $("rings-toggle").checked; render(); });
window.addEventListener("resize", render);
setInterval(() => {
  list.tick(state);
  const age = document.querySelector("#card .age");
  const unit = selected && state.units.get(selected);
  if (age && unit) age.textContent = formatAge(state.dataAge(unit));
  if (list.sortBy === "age" && !list.inOrder(state)) render();  // re-sort only when ages cross
}, 500);
setInterval(render, 5000); // stale markers and map ages follow the clock too

const role = claims(currentToken())?.role;
if (role === "dispatch" || role === "admin") start(); else showLogin();
