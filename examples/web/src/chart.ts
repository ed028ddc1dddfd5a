// A small hand-drawn loss curve on a <canvas>: raw per-step losses (faint) and their moving average.

export class LossChart {
  private readonly ctx: CanvasRenderingContext2D;
  private pending = false;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly values: readonly number[],
  ) {
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('this browser cannot draw on a 2D canvas');
    this.ctx = ctx;
  }

  /** Redraw on the next animation frame (at most once per frame, however many steps arrive). */
  schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw(): void {
    const { canvas, ctx, values } = this;
    const dpr = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || 640;
    const cssH = canvas.clientHeight || 280;
    if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
      canvas.width = Math.round(cssW * dpr);
      canvas.height = Math.round(cssH * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    const left = 48;
    const right = 12;
    const top = 12;
    const bottom = 28;
    const w = cssW - left - right;
    const h = cssH - top - bottom;
    const finite = values.filter((v) => Number.isFinite(v));
    const lo = 0;
    const hi = finite.length > 0 ? Math.max(...finite) * 1.05 || 1 : 1;
    const n = Math.max(values.length, 2);
    const x = (i: number): number => left + (i / (n - 1)) * w;
    const y = (v: number): number => top + h - ((v - lo) / (hi - lo)) * h;

    // axes and grid
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#666';
    ctx.strokeStyle = '#e3e3e3';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let k = 0; k <= 4; k++) {
      const v = lo + ((hi - lo) * k) / 4;
      ctx.beginPath();
      ctx.moveTo(left, y(v));
      ctx.lineTo(left + w, y(v));
      ctx.stroke();
      ctx.fillText(v.toFixed(2), left - 6, y(v));
    }
    ctx.textBaseline = 'top';
    ctx.textAlign = 'left';
    ctx.fillText('step 0', left, top + h + 6);
    ctx.textAlign = 'right';
    ctx.fillText(`${values.length} steps`, left + w, top + h + 6);
    if (values.length === 0) return;

    const line = (series: readonly number[], color: string, width: number): void => {
      ctx.strokeStyle = color;
      ctx.lineWidth = width;
      ctx.beginPath();
      series.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i), y(v)) : ctx.lineTo(x(i), y(v))));
      ctx.stroke();
    };
    line(values, 'rgba(37, 99, 235, 0.25)', 1);
    const smooth: number[] = [];
    let ema = values[0];
    for (const v of values) smooth.push((ema = 0.9 * ema + 0.1 * v));
    line(smooth, '#2563eb', 2);
  }
}
