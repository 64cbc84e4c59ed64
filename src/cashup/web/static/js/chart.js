// The candle chart of a symbol (TradingView lightweight-charts, vendored), with the user's fills as markers
// and resting orders as price lines. Candles come from GET /markets/{symbol}/candles; the chart needs plain
// numbers to draw, so prices are converted for drawing only — every figure a person reads (the legend,
// the marker and line labels) is the API's Decimal string as it came.

import {
  CandlestickSeries, ColorType, LineStyle, createChart, createSeriesMarkers,
} from "../vendor/lightweight-charts.standalone.production.mjs";
import { h } from "./dom.js";

const FIT_BELOW = 80;
const toSeconds = (iso) => Math.floor(Date.parse(iso) / 1000);
const decimals = (text) => (String(text).split(".")[1] || "").length;

export class CandleChart {
  constructor(container) {
    this.canvas = h("div", { class: "chart-canvas", role: "img", "aria-label": "Candle chart" });
    this.legend = h("ul", { class: "chart-legend", "aria-label": "Marked on the chart" });
    container.append(this.canvas, this.legend);
    const dark = window.matchMedia?.("(prefers-color-scheme: dark)").matches;
    this.chart = createChart(this.canvas, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: "transparent" },
        textColor: dark ? "#c9d1d9" : "#24292f",
        fontFamily: "system-ui, sans-serif",
      },
      grid: { vertLines: { color: "rgba(128,128,128,0.12)" }, horzLines: { color: "rgba(128,128,128,0.12)" } },
      timeScale: { timeVisible: true, secondsVisible: true, rightOffset: 2, maxBarSpacing: 24 },
      localization: { timeFormatter: (seconds) => new Date(seconds * 1000).toLocaleTimeString([], { hour12: false }) },
    });
    this.series = this.chart.addSeries(CandlestickSeries, {
      upColor: "#1a7f37", downColor: "#cf222e", borderVisible: false, wickUpColor: "#1a7f37", wickDownColor: "#cf222e",
    });
    this.markers = createSeriesMarkers(this.series, []);
    this.lines = new Map();
    this.interval = 5;
    this.times = [];
    this.precision = null;
  }

  /** Draw the candles of a CandlesOut answer. */
  setCandles(answer) {
    this.interval = answer.interval_seconds;
    const data = answer.candles.map((candle) => ({
      time: toSeconds(candle.time),
      open: Number(candle.open), high: Number(candle.high), low: Number(candle.low), close: Number(candle.close),
    }));
    const precision = Math.max(0, ...answer.candles.map((candle) => decimals(candle.close)));
    if (precision !== this.precision) {
      this.precision = precision;
      this.series.applyOptions({ priceFormat: { type: "price", precision, minMove: 10 ** -precision } });
    }
    this.series.setData(data);
    if (data.length < FIT_BELOW) this.chart.timeScale().fitContent();  // a young market: spread its few candles
    this.times = data.map((point) => point.time);
    this.redrawMarkers();
  }

  /** Mark fills (trades) on the candle they happened in and resting orders as dashed price lines. */
  mark(trades, restingOrders) {
    this.trades = trades;
    this.redrawMarkers();
    const seen = new Set();
    for (const order of restingOrders) {
      const price = order.price || order.trigger_price;
      if (!price) continue;
      seen.add(order.id);
      const title = `${order.side} ${order.remaining_quantity} @ ${price}`;
      const line = this.lines.get(order.id);
      if (line && line.title === title) continue;
      if (line) this.series.removePriceLine(line.handle);
      const handle = this.series.createPriceLine({
        price: Number(price), color: order.side === "buy" ? "#1a7f37" : "#cf222e", lineWidth: 1,
        lineStyle: LineStyle.Dashed, axisLabelVisible: true, title,
      });
      this.lines.set(order.id, { handle, title, order });
    }
    for (const [id, line] of this.lines) {
      if (!seen.has(id)) {
        this.series.removePriceLine(line.handle);
        this.lines.delete(id);
      }
    }
    this.drawLegend();
  }

  redrawMarkers() {
    const first = this.times[0];
    const markers = [];
    for (const trade of this.trades || []) {
      const at = toSeconds(trade.executed_at);
      const time = at - (at % this.interval);
      if (first === undefined || time < first) continue;
      const buy = trade.side === "buy";
      markers.push({
        time, position: buy ? "belowBar" : "aboveBar", color: buy ? "#1a7f37" : "#cf222e",
        shape: buy ? "arrowUp" : "arrowDown", text: `${buy ? "B" : "S"} ${trade.quantity} @ ${trade.price}`,
        id: trade.id,
      });
    }
    markers.sort((a, b) => a.time - b.time);
    this.markers.setMarkers(markers);
    this.canvas.dataset.markers = String(markers.length);
    this.drawLegend();
  }

  drawLegend() {
    const items = [];
    for (const trade of (this.trades || []).slice(0, 5)) {
      items.push(h("li", { class: `fill ${trade.side}`, dataset: { trade: trade.id } },
        `${trade.side === "buy" ? "▲ Bought" : "▼ Sold"} ${trade.quantity} @ ${trade.price}`));
    }
    for (const line of this.lines.values()) {
      items.push(h("li", { class: "resting", dataset: { order: line.order.id } }, `┄ Resting ${line.title}`));
    }
    this.legend.replaceChildren(...items);
  }
}
