// Geometry for the offline map: Web-Mercator projection fitted to a set of places, great-circle
// circles and distances, and "nice" scale-bar lengths. Pure functions, no DOM.

export const EARTH_RADIUS_M = 6_371_008.8;
const RAD = Math.PI / 180;
const MAX_LAT = 85.05112878; // Web Mercator's limit

/** Web-Mercator world coordinates in [0, 1] (x east, y south), as tile servers use them. */
export function mercator(lat, lon) {
  const s = Math.sin(Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * RAD);
  return { x: (lon + 180) / 360, y: 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI) };
}

/** The point `distanceM` from (lat, lon) along the great circle starting at `bearingDeg`. */
export function destination(lat, lon, bearingDeg, distanceM) {
  const d = distanceM / EARTH_RADIUS_M, b = bearingDeg * RAD, p1 = lat * RAD, l1 = lon * RAD;
  const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
  const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  return { lat: p2 / RAD, lon: ((l2 / RAD + 540) % 360) - 180 };
}

/** The great-circle circle of `radiusM` around (lat, lon) as `steps` points. */
export function circle(lat, lon, radiusM, steps = 96) {
  return Array.from({ length: steps }, (_, i) => destination(lat, lon, (360 * i) / steps, radiusM));
}

/** Great-circle distance in metres (haversine). */
export function distanceM(a, b) {
  const dp = (b.lat - a.lat) * RAD, dl = (b.lon - a.lon) * RAD;
  const h = Math.sin(dp / 2) ** 2 + Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * Math.sin(dl / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** A position a map may show: finite numbers within ±90° latitude and ±180° longitude. */
export function isGoodPosition(p) {
  return p != null && Number.isFinite(p.lat) && Number.isFinite(p.lon)
    && Math.abs(p.lat) <= 90 && Math.abs(p.lon) <= 180;
}

/**
 * A projection of `places` ({lat, lon}) onto a `width` × `height` pixel box with `pad` pixels
 * of margin, keeping Mercator's aspect ratio. With fewer than two distinct places it shows
 * `minSpanM` around them.
 */
export class Viewport {
  constructor(places, width, height, { pad = 24, minSpanM = 20_000 } = {}) {
    this.width = width;
    this.height = height;
    const good = places.filter(isGoodPosition);
    const centre = good.length
      ? { lat: good.reduce((s, p) => s + p.lat, 0) / good.length, lon: good.reduce((s, p) => s + p.lon, 0) / good.length }
      : { lat: 0, lon: 0 };
    const around = [0, 90, 180, 270].map((b) => destination(centre.lat, centre.lon, b, minSpanM / 2));
    const world = [...good, ...around].map((p) => mercator(p.lat, p.lon));
    const xs = world.map((w) => w.x), ys = world.map((w) => w.y);
    const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    this.scale = Math.min((width - 2 * pad) / (x1 - x0), (height - 2 * pad) / (y1 - y0)); // px per world unit
    this.originX = (x0 + x1) / 2 - width / 2 / this.scale;
    this.originY = (y0 + y1) / 2 - height / 2 / this.scale;
  }

  /** Pixel [x, y] of (lat, lon). */
  project(lat, lon) {
    const w = mercator(lat, lon);
    return [(w.x - this.originX) * this.scale, (w.y - this.originY) * this.scale];
  }

  /** Metres per pixel at latitude `lat` (Mercator stretches by 1 / cos(lat)). */
  metersPerPixel(lat) {
    return (2 * Math.PI * EARTH_RADIUS_M * Math.cos(lat * RAD)) / this.scale;
  }

  /** The latitude at the middle of the box (for the scale bar). */
  centreLat() {
    const y = this.originY + this.height / 2 / this.scale;
    return Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) / RAD;
  }
}

/** The largest 1·10^n, 2·10^n or 5·10^n metres not longer than `maxM`. */
export function niceDistanceM(maxM) {
  const power = 10 ** Math.floor(Math.log10(maxM));
  return [5, 2, 1].map((f) => f * power).find((d) => d <= maxM) ?? power;
}
