// The offline map: an SVG drawn from coordinates (Web Mercator fitted to the fleet), with a km
// scale bar, hospitals and their 30-minute rings, units with status colour and heading, and the
// network-weather cells. Map tiles only when a tile URL template is configured (off by default).

import { Viewport, circle, niceDistanceM } from "./geo.js";
import { rankOf } from "/web/js/alarm_order.js";
import { placeLabels, spotsAround } from "./labels.js";

export const ASSUMED_SPEED_KMH = 60;
export const RING_MINUTES = 30;
export const RING_RADIUS_M = (ASSUMED_SPEED_KMH * 1000 * RING_MINUTES) / 60; // 30 km
export const STATUS_COLOURS = {
  available: "#2e7d32", dispatched: "#f9a825", en_route: "#ef6c00", on_scene: "#c2185b",
  transporting: "#1565c0", at_hospital: "#6a1b9a", out_of_service: "#757575",
};
const SVG = "http://www.w3.org/2000/svg";
const STALE_S = 30;

function el(name, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children);
  return node;
}

function title(text) { return el("title", {}, text); }

/** Colour for a link quality in [0, 1]: red (0) through amber to green (1). */
export function qualityColour(q) {
  const hue = Math.round(120 * Math.max(0, Math.min(1, q)));
  return `hsl(${hue} 75% 45%)`;
}

export class FleetMap {
  /**
   * @param {SVGSVGElement} svg the map element
   * @param {{tiles?: string|null, onSelect?: (unitId: string) => void}} options tiles: a URL
   *   template with {z}, {x}, {y} (no tiles when absent)
   */
  constructor(svg, { tiles = null, onSelect = () => {} } = {}) {
    this.svg = svg;
    this.tiles = tiles;
    this.onSelect = onSelect;
    this.showWeather = true;
    this.fitRings = false;  // zoom out until every hospital's whole 30-minute ring shows
    this.viewport = null;
    this.textWidths = new Map(); // label text -> px (one font: measured once per text)
    this.labels = [];  // this render's labels, in placement priority order
    this.obstacles = [];  // this render's marker boxes
  }

  render(state, selected) {
    const { width, height } = this.svg.getBoundingClientRect();
    if (width < 10 || height < 10) return;
    this.svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const hospitals = [...state.hospitals.values()];
    const units = [...state.units.values()].filter((u) => u.position);
    // Fit every unit and hospital; the 30-minute rings may reach past the edges.
    const places = [...units.map((u) => u.position), ...hospitals];
    if (this.fitRings) places.push(...hospitals.flatMap((h) => circle(h.lat, h.lon, RING_RADIUS_M, 4)));
    const view = (this.viewport = new Viewport(places, width, height, { pad: 48 }));
    const destination = selected ? state.units.get(selected)?.destination : null;
    this.labels = [];
    this.obstacles = [];
    // Label priority: the selected unit, then units by alarm priority, then hospitals.
    const order = (u) => (u.unit_id === selected ? -4 : -rankOf(state.topPriority(u)));
    units.sort((a, b) => order(a) - order(b) || a.unit_id.localeCompare(b.unit_id));
    const layers = [];
    if (this.tiles) layers.push(this.tileLayer(view));
    if (this.showWeather) layers.push(this.weatherLayer(view, state.weather));
    layers.push(el("g", { class: "rings" }, ...hospitals.map((h) => this.ring(view, h, h.hospital_id === destination))));
    // Units are built first so their labels are placed first; hospitals are drawn beneath them,
    // and the most important unit last, on top.
    const unitNodes = units.map((u) => this.unit(view, u, state, u.unit_id === selected));
    const unitLayer = el("g", { class: "units" }, ...unitNodes.reverse());
    layers.push(el("g", { class: "hospitals" }, ...hospitals.map((h) => this.hospital(view, h))));
    layers.push(unitLayer);
    layers.push(this.scaleBar(view));
    this.svg.replaceChildren(...layers);
    this.placeLabels(width, height);
  }

  /** Put each label where it covers no marker and no label of higher priority. */
  placeLabels(width, height) {
    const labels = this.labels.map((l) => {
      const text = l.node.textContent;
      if (!this.textWidths.has(text)) this.textWidths.set(text, l.node.getComputedTextLength());
      return { ...l, width: this.textWidths.get(text) };
    });
    const spots = placeLabels(labels, this.obstacles, [0, 0, width, height]);
    labels.forEach(({ node }, i) => {
      node.setAttribute("x", spots[i].x.toFixed(1));
      node.setAttribute("y", spots[i].y.toFixed(1));
      node.setAttribute("text-anchor", spots[i].anchor);
    });
  }

  /** Remember a marker's box and its label for ``placeLabels``. */
  addMarker(x, y, extent, label, firstSpots = []) {
    this.obstacles.push([x - extent.left, y - extent.top, x + extent.right, y + extent.bottom]);
    this.labels.push({ node: label, cx: x, cy: y, spots: [...firstSpots, ...spotsAround(extent)] });
  }

  ring(view, h, highlighted) {
    const points = circle(h.lat, h.lon, RING_RADIUS_M, 120).map((p) => view.project(p.lat, p.lon));
    return el("polygon", {
      class: `ring${highlighted ? " destination" : ""}`, "data-hospital-id": h.hospital_id,
      points: points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "),
    }, title(`${h.name}: ${RING_MINUTES} min at ${ASSUMED_SPEED_KMH} km/h (${RING_RADIUS_M / 1000} km)`));
  }

  hospital(view, h) {
    const [x, y] = view.project(h.lat, h.lon);
    const badges = [];
    if (h.cath_lab) badges.push(["C", "cath lab", "badge cath"]);
    if (h.stroke_unit) badges.push(["S", "stroke unit", "badge stroke"]);
    const group = el("g", {
      class: `hospital${h.ready ? " ready" : ""}`, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
      "data-hospital-id": h.hospital_id,
    }, title(`${h.name}${badges.length ? ` — ${badges.map((b) => b[1]).join(", ")}` : ""}${h.ready ? " — ready" : ""}`),
    el("rect", { x: -9, y: -9, width: 18, height: 18, rx: 3 }),
    el("text", { class: "h", x: 0, y: 5 }, "H"));
    badges.forEach(([letter, , cls], i) => {
      group.append(el("g", { class: cls, transform: `translate(${13 + i * 16},6)` },
        el("circle", { r: 7 }), el("text", { y: 4 }, letter)));
    });
    const label = el("text", { class: "label", x: 13, y: -6 }, h.name);
    group.append(label);
    const right = badges.length ? 13 + (badges.length - 1) * 16 + 7 : 9;
    const extent = { left: 9, top: 9, right, bottom: badges.length ? 13 : 9 };
    this.addMarker(x, y, extent, label, [{ x: 13, y: -6, anchor: "start" }]); // above its badges
    return group;
  }

  unit(view, u, state, selected) {
    const [x, y] = view.project(u.position.lat, u.position.lon);
    const age = state.dataAge(u);
    const stale = age != null && age > STALE_S;
    const priority = state.topPriority(u);
    const group = el("g", {
      class: `unit${selected ? " selected" : ""}${stale ? " stale" : ""}${priority ? ` alarm-${priority}` : ""}`,
      transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`, tabindex: 0, role: "button",
      "data-unit-id": u.unit_id, "data-lat": u.position.lat, "data-lon": u.position.lon,
      "data-x": x.toFixed(1), "data-y": y.toFixed(1), "data-status": u.status,
    }, title(`${u.unit_id}: ${u.status.replace(/_/g, " ")}${u.case_id ? `, case ${u.case_id.slice(0, 8)}` : ""}`));
    if (priority) group.append(el("circle", { class: "halo", r: 15 }));
    if (Number.isFinite(u.position.heading_deg) && (u.position.speed_mps ?? 0) > 0.5) {
      group.append(el("path", { class: "heading", d: "M0,-19 L5,-10 L-5,-10 Z", transform: `rotate(${u.position.heading_deg})` }));
    }
    const label = el("text", { class: "label", x: 12, y: 4 }, u.unit_id);
    group.append(el("circle", { class: "body", r: 9, fill: STATUS_COLOURS[u.status] ?? "#757575" }), label);
    const r = priority ? 15 : 9; // the alarm halo
    this.addMarker(x, y, { left: r, top: r, right: r, bottom: r }, label);
    const choose = () => this.onSelect(u.unit_id);
    group.addEventListener("click", choose);
    group.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") choose(); });
    return group;
  }

  weatherLayer(view, cells) {
    const group = el("g", { class: "weather" });
    if (!cells.length) return group;
    const step = (key, fallback) => {
      const values = [...new Set(cells.map((c) => c[key]))].sort((a, b) => a - b);
      const gaps = values.slice(1).map((v, i) => v - values[i]).filter((d) => d > 1e-9);
      return gaps.length ? Math.min(...gaps) : fallback;
    };
    const dLat = step("lat", 0.01), dLon = step("lon", 0.01); // the hub's cells are 0.01°
    for (const c of cells) {
      const [x0, y0] = view.project(c.lat + dLat / 2, c.lon - dLon / 2);
      const [x1, y1] = view.project(c.lat - dLat / 2, c.lon + dLon / 2);
      group.append(el("rect", {
        class: "cell", x: x0.toFixed(1), y: y0.toFixed(1), width: Math.max(1, x1 - x0).toFixed(1),
        height: Math.max(1, y1 - y0).toFixed(1), fill: qualityColour(c.quality), "data-quality": c.quality,
      }, title(`link quality ${(100 * c.quality).toFixed(0)} % (${c.samples} reports, last hour)`)));
    }
    return group;
  }

  tileLayer(view) {
    const group = el("g", { class: "tiles" });
    const z = Math.max(0, Math.min(19, Math.round(Math.log2(view.scale / 256))));
    const n = 2 ** z, size = view.scale / n;
    const tx0 = Math.max(0, Math.floor(view.originX * n)), ty0 = Math.max(0, Math.floor(view.originY * n));
    const tx1 = Math.min(n - 1, Math.floor((view.originX + view.width / view.scale) * n));
    const ty1 = Math.min(n - 1, Math.floor((view.originY + view.height / view.scale) * n));
    for (let tx = tx0; tx <= tx1; tx++) {
      for (let ty = ty0; ty <= ty1; ty++) {
        const href = this.tiles.replace("{z}", z).replace("{x}", tx).replace("{y}", ty);
        group.append(el("image", {
          href, x: ((tx / n - view.originX) * view.scale).toFixed(1), y: ((ty / n - view.originY) * view.scale).toFixed(1),
          width: size.toFixed(1), height: size.toFixed(1),
        }));
      }
    }
    return group;
  }

  scaleBar(view) {
    const metres = niceDistanceM(view.metersPerPixel(view.centreLat()) * 150);
    const px = metres / view.metersPerPixel(view.centreLat());
    const x = 16, y = view.height - 18;
    const label = metres >= 1000 ? `${metres / 1000} km` : `${metres} m`;
    return el("g", { class: "scale", "data-metres": metres, "data-px": px.toFixed(1) },
      el("path", { d: `M${x},${y - 6} V${y} H${(x + px).toFixed(1)} V${y - 6}` }),
      el("text", { x: x + px / 2, y: y - 8 }, label));
  }
}
