// Map label placement: every name stays readable when units bunch up at a hospital. Greedy, in
// priority order: each label takes the first of its candidate spots that overlaps no marker and
// no label placed before it, else the spot that overlaps least. Pure: boxes in, spots out.

export const ASCENT_PX = 11; // 12 px system-ui: baseline to the top of the capitals ...
export const DESCENT_PX = 3; // ... and to the bottom of the descenders
const GAP_PX = 3;

/**
 * Candidate spots for a label beside a marker that spans `left`, `right`, `top`, `bottom` px
 * from its centre: right, left, above, below, then the four diagonals.
 * @returns {{x: number, y: number, anchor: "start"|"middle"|"end"}[]} text positions
 */
export function spotsAround({ left, right, top, bottom }) {
  const xr = right + GAP_PX, xl = -left - GAP_PX;
  const above = -top - GAP_PX - DESCENT_PX, below = bottom + GAP_PX + ASCENT_PX;
  const middle = (ASCENT_PX - DESCENT_PX) / 2;
  return [
    { x: xr, y: middle, anchor: "start" }, { x: xl, y: middle, anchor: "end" },
    { x: 0, y: above, anchor: "middle" }, { x: 0, y: below, anchor: "middle" },
    { x: xr, y: above, anchor: "start" }, { x: xr, y: below, anchor: "start" },
    { x: xl, y: above, anchor: "end" }, { x: xl, y: below, anchor: "end" },
  ];
}

/** The box [x0, y0, x1, y1] of a `width` px label at `spot` of a marker centred at (cx, cy). */
export function labelBox(cx, cy, width, spot) {
  const x0 = cx + spot.x - (spot.anchor === "end" ? width : spot.anchor === "middle" ? width / 2 : 0);
  return [x0, cy + spot.y - ASCENT_PX, x0 + width, cy + spot.y + DESCENT_PX];
}

function overlap(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

/**
 * @param {{cx: number, cy: number, width: number, spots: object[]}[]} labels in priority order
 * @param {number[][]} obstacles boxes [x0, y0, x1, y1] no label should cover (the markers)
 * @param {number[]} bounds [x0, y0, x1, y1] of the map; a spot reaching outside counts as overlap
 * @returns {object[]} the chosen spot of each label
 */
export function placeLabels(labels, obstacles, bounds) {
  const taken = [...obstacles];
  return labels.map(({ cx, cy, width, spots }) => {
    let best = spots[0], bestCost = Infinity;
    for (const spot of spots) {
      const box = labelBox(cx, cy, width, spot);
      const area = (box[2] - box[0]) * (box[3] - box[1]);
      let cost = area - overlap(box, bounds); // the part outside the map
      for (const other of taken) cost += overlap(box, other);
      if (cost < bestCost) [best, bestCost] = [spot, cost];
      if (cost === 0) break;
    }
    taken.push(labelBox(cx, cy, width, best));
    return best;
  });
}
