// Small SVG line charts: no library, no per-frame work. A chart is redrawn
// only when new data arrives (every poll), by replacing its polylines'
// points; the viewBox is the data's own coordinate space, stretched to the
// box, and strokes keep their width via vector-effect.

const NS = "http://www.w3.org/2000/svg";
const W = 300;
const H = 100;

function el(name, attrs) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function pointsOf(values, max) {
  const n = values.length;
  if (n === 0) return "";
  const dx = n > 1 ? W / (n - 1) : 0;
  let out = "";
  for (let i = 0; i < n; i++) {
    const y = H - (Math.min(values[i], max) / max) * H;
    out += `${(i * dx).toFixed(1)},${y.toFixed(1)} `;
  }
  return out.trimEnd();
}

// LineChart draws one or more series in a <figure>.
export class LineChart {
  constructor(figure, { series = 1, format = (v) => String(v), label = "" } = {}) {
    this.format = format;
    this.label = label;
    const plot = document.createElement("div");
    plot.className = "plot";
    this.svg = el("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
    for (const y of [0.25, 0.5, 0.75]) {
      this.svg.append(el("line", { x1: 0, x2: W, y1: H * y, y2: H * y, class: "grid", "vector-effect": "non-scaling-stroke" }));
    }
    this.lines = [];
    for (let i = 0; i < series; i++) {
      const l = el("polyline", { class: `line s${i + 1}`, points: "" });
      this.lines.push(l);
      this.svg.append(l);
    }
    const axis = document.createElement("div");
    axis.className = "axis";
    this.maxLabel = document.createElement("span");
    this.rangeLabel = document.createElement("span");
    axis.append(this.rangeLabel, this.maxLabel);
    plot.append(this.svg);
    figure.append(plot, axis);
  }

  // update draws values (one array per series) spanning rangeText.
  update(values, rangeText) {
    let max = 0;
    for (const s of values) for (const v of s) if (v > max) max = v;
    max = niceMax(max);
    values.forEach((s, i) => this.lines[i].setAttribute("points", pointsOf(s, max)));
    this.maxLabel.textContent = `max ${this.format(max)}`;
    this.rangeLabel.textContent = rangeText;
    const last = values.map((s) => this.format(s.length ? s[s.length - 1] : 0));
    this.svg.setAttribute("aria-label", `${this.label}, ${rangeText}; latest ${last.join(" / ")}; scale up to ${this.format(max)}`);
  }
}

// sparkline returns a small decorative SVG of values (its numbers are
// given in text beside it).
export function sparkline(values) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", class: "spark", "aria-hidden": "true", focusable: "false" });
  svg.append(el("polyline", { class: "line s1", points: pointsOf(values, niceMax(Math.max(0, ...values))) }));
  return svg;
}
