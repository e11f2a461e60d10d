// Vitals tiles: HR, SpO2, NIBP, RR, EtCO2, temperature from a `vitals` message's data (each a
// {value, unit, at} measurement or absent). A tile greys out when its value is older than 60 s.

const STALE_S = 60;

export function renderVitals(element, data) {
  const nibp = data.nibp_sys && data.nibp_dia
    ? { value: `${Math.round(data.nibp_sys.value)}/${Math.round(data.nibp_dia.value)}`, unit: "mmHg", at: data.nibp_sys.at }
    : null;
  const rows = [
    ["hr", "HR", data.hr, 0], ["spo2", "SpO₂", data.spo2, 0], ["nibp", "NIBP", nibp, 0],
    ["rr", "RR", data.rr, 0], ["etco2", "EtCO₂", data.etco2, 0], ["temp", "Temp", data.temp, 1],
  ];
  const now = Date.now() / 1000;
  element.replaceChildren(...rows.filter(([, , m]) => m).map(([key, name, m, digits]) => {
    const tile = document.createElement("div");
    tile.className = `tile ${key}${m.at && now - m.at > STALE_S ? " stale" : ""}`;
    tile.dataset.vital = key;
    const title = document.createElement("span");
    title.textContent = name;
    const value = document.createElement("b");
    value.textContent = typeof m.value === "number" ? m.value.toFixed(digits) : m.value;
    const unit = document.createElement("small");
    unit.textContent = m.unit;
    tile.append(title, value, unit);
    return tile;
  }));
}
