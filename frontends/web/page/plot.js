// plot.js: a small line plot of one statistic over time on a <canvas>, for the call's
// statistics panel. The canvas is an image to assistive technology; its label carries the
// latest value and how many samples are drawn, so the numbers are never only in pixels.

const KEEP = 60; // samples kept: a minute at one a second

export class Plot {
  constructor(title, unit, digits = 0) {
    this.title = title;
    this.unit = unit;
    this.digits = digits;
    this.values = [];
    this.figure = document.createElement('figure');
    this.figure.className = 'plot';
    this.canvas = document.createElement('canvas');
    this.canvas.setAttribute('role', 'img');
    this.caption = document.createElement('figcaption');
    this.figure.append(this.caption, this.canvas);
    this.update();
  }

  // value: a number, or null when the node has none yet (RTT before the first report).
  push(value) {
    this.values.push(Number.isFinite(value) ? value : null);
    if (this.values.length > KEEP)
      this.values.shift();
    this.update();
  }

  latest() {
    for (let i = this.values.length - 1; i >= 0; i--)
      if (this.values[i] !== null)
        return this.values[i];
    return null;
  }

  update() {
    const v = this.latest();
    const text = v === null ? 'no value yet' : `${v.toFixed(this.digits)} ${this.unit}`;
    this.caption.textContent = `${this.title}: ${text}`;
    this.canvas.setAttribute('aria-label',
      `${this.title} over time, ${this.values.length} samples, latest ${text}`);
    this.canvas.dataset.samples = String(this.values.length);
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(c.clientWidth, 120), h = Math.max(c.clientHeight, 48);
    if (c.width !== Math.round(w * ratio) || c.height !== Math.round(h * ratio)) {
      c.width = Math.round(w * ratio);
      c.height = Math.round(h * ratio);
    }
    const g = c.getContext('2d');
    if (!g)
      return;
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    const style = getComputedStyle(c);
    const known = this.values.filter((x) => x !== null);
    const max = Math.max(1e-9, ...known) * 1.15;
    g.strokeStyle = style.getPropertyValue('--grid').trim() || '#888';
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(0, h - 0.5);
    g.lineTo(w, h - 0.5);
    g.stroke();
    g.fillStyle = style.color;
    g.font = '11px system-ui, sans-serif';
    g.fillText(`${max.toFixed(this.digits)} ${this.unit}`, 2, 11);
    g.strokeStyle = style.getPropertyValue('--line').trim() || style.color;
    g.lineWidth = 2;
    g.beginPath();
    // The first samples fill the width of 20 (not crowded at the right edge of a minute).
    const span = Math.max(this.values.length, 20);
    let drawing = false;
    this.values.forEach((x, i) => {
      if (x === null) {
        drawing = false;
        return;
      }
      const px = ((span - this.values.length + i) / (span - 1)) * w, py = h - 2 - (x / max) * (h - 16);
      if (drawing)
        g.lineTo(px, py);
      else
        g.moveTo(px, py);
      drawing = true;
    });
    g.stroke();
  }
}
