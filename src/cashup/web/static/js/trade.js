// The trading monitor: a candle chart with fills and resting orders, the order ticket (validate, place),
// open orders with inline amend and cancel, algorithm progress, positions, balances, fills, history, ledger.

import { api, ApiError, query } from "./api.js";
import { CandleChart } from "./chart.js";
import { amount, dateTime, facts, h, KeyedTable, panel, say, time } from "./dom.js";
import { canTrade } from "./session.js";

const SYMBOLS = ["BTC/USDT", "ETH/USDT"];
const OPEN_STATUSES = ["pending_new", "submitted", "accepted", "partially_filled", "pending_replace",
  "pending_cancel", "untriggered", "triggered"];
const AMENDABLE = new Set(["accepted", "partially_filled", "untriggered"]);
const TYPES = [
  ["Direct", [["market", "Market"], ["limit", "Limit"]]],
  ["Held by the service", [["stop_market", "Stop market"], ["stop_limit", "Stop limit"],
    ["take_profit_market", "Take profit market"], ["take_profit_limit", "Take profit limit"],
    ["trailing_stop", "Trailing stop"]]],
  ["Algorithms", [["twap", "TWAP"], ["iceberg", "Iceberg"]]],
];
const FIELDS_BY_TYPE = {
  market: ["quantity"],
  limit: ["quantity", "price", "time_in_force", "post_only"],
  stop_market: ["quantity", "trigger_price"],
  take_profit_market: ["quantity", "trigger_price"],
  stop_limit: ["quantity", "price", "trigger_price"],
  take_profit_limit: ["quantity", "price", "trigger_price"],
  trailing_stop: ["quantity", "trailing_offset", "trailing_offset_type"],
  twap: ["quantity", "price", "twap_slices", "twap_interval"],
  iceberg: ["quantity", "price", "display_quantity"],
};
const OPTIONAL_FIELDS = [...new Set(Object.values(FIELDS_BY_TYPE).flat())].filter((name) => name !== "quantity");
const CHART_INTERVALS = [[1, "1 s"], [5, "5 s"], [15, "15 s"], [60, "1 min"]];
const MARKET_REFRESH_MS = 2000;

const orderPrice = (order) => order.price ?? (order.trigger_price ? `trigger ${order.trigger_price}` : "market");

export function tradePage(root, { live, role }) {
  const state = { symbol: SYMBOLS[0], interval: 5, history: { status: "", symbol: "", side: "" }, busy: false };
  const trading = canTrade(role);
  const stops = [];

  // -- chart ------------------------------------------------------------------------------------------------
  const symbolSelect = h("select", { id: "chart-symbol", "aria-label": "Chart symbol" },
    SYMBOLS.map((symbol) => h("option", { value: symbol }, symbol)));
  const lastPrice = h("output", { class: "num last-price", id: "last-price", "aria-label": "Last price" });
  const intervalSelect = h("select", { id: "chart-interval", "aria-label": "Candle interval" },
    CHART_INTERVALS.map(([seconds, label]) => h("option", { value: seconds, selected: seconds === state.interval }, label)));
  intervalSelect.addEventListener("change", () => {
    state.interval = Number(intervalSelect.value);
    refreshMarket();
  });
  const chartPanel = panel("Market", { id: "market", tools: [symbolSelect, intervalSelect, lastPrice] });
  const chartError = h("p", { class: "message" });
  chartPanel.body.append(chartError);
  const chart = new CandleChart(chartPanel.body);
  symbolSelect.addEventListener("change", () => {
    state.symbol = symbolSelect.value;
    if (ticket) ticket.symbol.value = state.symbol;
    refreshMarket();
    refreshOrders();
    refreshFills();
  });

  // -- order ticket -----------------------------------------------------------------------------------------
  let ticket = null;
  const ticketPanel = panel("Order ticket", { id: "ticket" });
  if (trading) ticket = buildTicket(ticketPanel.body);
  else ticketPanel.body.append(h("p", { class: "note" }, `Your role (${role}) may read but not place orders.`));

  function buildTicket(body) {
    const field = (name, label, input, hint) => h("div", { class: "field", dataset: { field: name } },
      h("label", { for: `order-${name}` }, label), input,
      hint ? h("small", { class: "hint" }, hint) : null,
      h("small", { class: "field-error", id: `order-${name}-error`, "aria-live": "polite" }));
    const input = (name, attributes = {}) => h("input", {
      id: `order-${name}`, name, inputmode: "decimal", autocomplete: "off", spellcheck: "false",
      "aria-describedby": `order-${name}-error`, ...attributes,
    });
    const select = (name, options) => h("select", { id: `order-${name}`, name },
      options.map(([value, label]) => h("option", { value }, label)));
    const controls = {
      symbol: select("symbol", SYMBOLS.map((symbol) => [symbol, symbol])),
      side: select("side", [["buy", "Buy"], ["sell", "Sell"]]),
      order_type: h("select", { id: "order-order_type", name: "order_type" }, TYPES.map(([group, types]) =>
        h("optgroup", { label: group }, types.map(([value, label]) => h("option", { value }, label))))),
      quantity: input("quantity", { required: true, placeholder: "0.01" }),
      price: input("price", { placeholder: "limit price" }),
      trigger_price: input("trigger_price", { placeholder: "trigger price" }),
      trailing_offset: input("trailing_offset"),
      trailing_offset_type: select("trailing_offset_type", [["price", "price"], ["bps", "bps"]]),
      twap_slices: input("twap_slices", { inputmode: "numeric", placeholder: "10" }),
      twap_interval: input("twap_interval", { inputmode: "numeric", placeholder: "60" }),
      display_quantity: input("display_quantity", { placeholder: "visible quantity" }),
      time_in_force: select("time_in_force", [["GTC", "GTC"], ["IOC", "IOC"], ["FOK", "FOK"]]),
      post_only: h("input", { id: "order-post_only", name: "post_only", type: "checkbox" }),
      reduce_only: h("input", { id: "order-reduce_only", name: "reduce_only", type: "checkbox" }),
    };
    controls.order_type.value = "limit";
    const labels = {
      symbol: "Symbol", side: "Side", order_type: "Type", quantity: "Quantity", price: "Price",
      trigger_price: "Trigger price", trailing_offset: "Trailing offset", trailing_offset_type: "Offset in",
      twap_slices: "Slices", twap_interval: "Interval (s)", display_quantity: "Display quantity",
      time_in_force: "Time in force", post_only: "Post only", reduce_only: "Reduce only",
    };
    const fields = Object.fromEntries(Object.entries(controls).map(([name, control]) => [name,
      field(name, labels[name], control, name === "price" ? "empty on a TWAP: no limit" : null)]));
    const message = h("p", { class: "message", id: "ticket-message" });
    const verdict = h("div", { class: "verdict", id: "verdict", "aria-live": "polite" });
    const validate = h("button", { type: "button", id: "validate", class: "secondary" }, "Validate");
    const place = h("button", { type: "submit", id: "place" }, "Place order");
    const form = h("form", { class: "ticket", id: "order-form", novalidate: true },
      h("div", { class: "row" }, fields.symbol, fields.side, fields.order_type),
      h("div", { class: "row" }, fields.quantity, fields.price, fields.trigger_price, fields.trailing_offset,
        fields.trailing_offset_type, fields.display_quantity, fields.twap_slices, fields.twap_interval),
      h("div", { class: "row" }, fields.time_in_force, fields.post_only, fields.reduce_only),
      h("div", { class: "actions" }, validate, place), message, verdict);
    body.append(form);

    const shown = () => new Set(FIELDS_BY_TYPE[controls.order_type.value] || []);
    const layout = () => {
      const visible = shown();
      for (const name of OPTIONAL_FIELDS) fields[name].hidden = !visible.has(name);
    };
    controls.order_type.addEventListener("change", layout);
    layout();

    const bodyOf = () => {
      const visible = shown();
      const order = {
        symbol: controls.symbol.value, side: controls.side.value, order_type: controls.order_type.value,
      };
      for (const name of visible) {
        const control = controls[name];
        if (control.type === "checkbox") order[name] = control.checked;
        else if (control.value.trim() !== "") {
          order[name] = ["twap_slices", "twap_interval"].includes(name) ? Number(control.value) : control.value.trim();
        }
      }
      if (controls.reduce_only.checked) order.reduce_only = true;
      return order;
    };
    const clearErrors = () => {
      for (const name of Object.keys(controls)) {
        document.getElementById(`order-${name}-error`).textContent = "";
        controls[name].removeAttribute("aria-invalid");
      }
      say(message, "");
    };
    const showError = (error) => {
      const byField = error instanceof ApiError ? error.fields : {};
      let placed = false;
      for (const [name, text] of Object.entries(byField)) {
        const slot = document.getElementById(`order-${name}-error`);
        if (slot && !fields[name].hidden) {
          slot.textContent = text;
          controls[name].setAttribute("aria-invalid", "true");
          placed = true;
        }
      }
      say(message, placed && !error.body?.rule ? "Check the fields marked below." : error.message);
    };
    const run = async (work) => {
      if (state.busy) return;
      state.busy = true;
      validate.disabled = place.disabled = true;
      clearErrors();
      try {
        await work();
      } catch (error) {
        showError(error);
      } finally {
        state.busy = false;
        validate.disabled = place.disabled = false;
      }
    };
    validate.addEventListener("click", () => run(async () => {
      const answer = await api("POST", "/orders/validate", bodyOf());
      showVerdict(verdict, answer);
    }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run(async () => {
        verdict.replaceChildren();
        const order = await api("POST", "/orders", bodyOf());
        say(message, `Order ${order.client_order_id} is ${order.status.replaceAll("_", " ")}.`, "note");
        refreshAll();
      });
    });
    return controls;
  }

  function showVerdict(container, answer) {
    const denied = answer.verdict === "denied";
    container.replaceChildren(
      h("p", { class: `verdict-head ${denied ? "denied" : "accepted"}` },
        denied ? `Denied by ${answer.rule}` : "Accepted by every risk check",
        denied && answer.detail ? h("span", { class: "detail" }, `: ${answer.detail}`) : null),
      facts([
        ...(denied ? [["Rule", answer.rule, false], ["Limit", amount(answer.limit)], ["Requested", amount(answer.requested)]] : []),
        [`Lock (${answer.lock_asset})`, amount(answer.lock_amount)],
        [`Available (${answer.lock_asset})`, amount(answer.available)],
        ["Mark price", amount(answer.mark_price)],
        ["Position now", amount(answer.position_quantity)],
        ["Position if filled", amount(answer.projected_position)],
      ]));
  }

  // -- open orders ------------------------------------------------------------------------------------------
  const openPanel = panel("Open orders", { id: "open-orders", wide: true });
  const openMessage = h("p", { class: "message" });
  const openTable = new KeyedTable([
    { label: "Created", value: (o) => time(o.created_at) },
    { label: "Symbol", value: (o) => o.symbol },
    { label: "Side", value: (o) => o.side },
    { label: "Type", value: (o) => o.order_type },
    { label: "Quantity", value: (o) => o.quantity, num: true },
    { label: "Filled", value: (o) => o.filled_quantity, num: true },
    { label: "Price", value: (o) => orderPrice(o), num: true },
    { label: "Status", value: (o) => o.status },
    { label: "", cell: (o, td, created) => actionsCell(o, td, created) },
  ], { label: "Open orders", empty: "No open orders.", rowClass: (o) => o.side });
  openPanel.body.append(openMessage, openTable.element);

  function actionsCell(order, td, created) {
    if (!trading) return;
    if (created) {
      const amendButton = h("button", { type: "button", class: "secondary small", dataset: { action: "amend" },
        "aria-label": `Amend order ${order.client_order_id}` }, "Amend");
      const cancelButton = h("button", { type: "button", class: "danger small", dataset: { action: "cancel" },
        "aria-label": `Cancel order ${order.client_order_id}` }, "Cancel");
      const editor = h("form", { class: "amend", hidden: true });
      const error = h("small", { class: "field-error", role: "alert" });
      td.append(h("div", { class: "row-actions" }, amendButton, cancelButton, editor, error));
      amendButton.addEventListener("click", () => openAmend(td));
      cancelButton.addEventListener("click", async () => {
        error.textContent = "";
        cancelButton.disabled = true;
        try {
          await api("DELETE", `/orders/${td.dataset.orderId}`);
          refreshAll();
        } catch (failure) {
          error.textContent = failure.message;
          cancelButton.disabled = false;
        }
      });
    }
    td.dataset.orderId = order.id;
    td.order = order;
    td.querySelector("[data-action=amend]").disabled = !AMENDABLE.has(order.status);
    td.querySelector("[data-action=cancel]").disabled = ["pending_cancel"].includes(order.status);
  }

  function openAmend(td) {
    const order = td.order;
    const editor = td.querySelector("form.amend");
    const error = td.querySelector(".field-error");
    const priceName = order.price ? "price" : "trigger_price";
    const price = h("input", { name: "price", inputmode: "decimal", value: order[priceName] || "",
      "aria-label": `New ${priceName.replace("_", " ")}`, size: 10 });
    const quantity = h("input", { name: "quantity", inputmode: "decimal", value: order.quantity,
      "aria-label": "New total quantity", size: 8 });
    const save = h("button", { type: "submit", class: "small" }, "Save");
    const back = h("button", { type: "button", class: "quiet small" }, "Back");
    editor.replaceChildren(price, quantity, save, back);
    editor.hidden = false;
    price.focus();
    price.select();
    const close = () => {
      editor.hidden = true;
      error.textContent = "";
      td.querySelector("[data-action=amend]").focus();
    };
    back.addEventListener("click", close);
    editor.onkeydown = (event) => {
      if (event.key === "Escape") close();
    };
    editor.onsubmit = async (event) => {
      event.preventDefault();
      error.textContent = "";
      const change = {};
      if (price.value.trim() && price.value.trim() !== order[priceName]) change[priceName] = price.value.trim();
      if (quantity.value.trim() && quantity.value.trim() !== order.quantity) change.quantity = quantity.value.trim();
      if (!Object.keys(change).length) {
        editor.hidden = true;
        return;
      }
      save.disabled = true;
      try {
        await api("PATCH", `/orders/${order.id}`, change);
        editor.hidden = true;
        refreshAll();
      } catch (failure) {
        error.textContent = failure.message;
      } finally {
        save.disabled = false;
      }
    };
  }

  // -- algorithms -------------------------------------------------------------------------------------------
  const algoPanel = panel("Algorithms", { id: "algorithms" });
  const algoList = h("ul", { class: "algos" });
  const algoEmpty = h("p", { class: "note" }, "No TWAP or iceberg order is working.");
  algoPanel.body.append(algoEmpty, algoList);
  const algoItems = new Map();

  async function refreshAlgorithms(openOrders) {
    const parents = openOrders.filter((o) => ["twap", "iceberg"].includes(o.order_type) && !o.parent_order_id);
    algoEmpty.hidden = parents.length > 0;
    const seen = new Set();
    await Promise.all(parents.map(async (order) => {
      seen.add(order.id);
      const kind = order.order_type === "twap" ? "twap-progress" : "iceberg-progress";
      let progress;
      try {
        progress = await api("GET", `/orders/${order.id}/${kind}`);
      } catch {
        return;
      }
      let item = algoItems.get(order.id);
      if (!item) {
        item = { li: h("li", { dataset: { id: order.id } }), bar: h("progress"), text: h("span", { class: "algo-facts" }) };
        item.li.append(h("strong", {}, `${order.order_type.toUpperCase()} ${order.side} ${order.quantity} ${order.symbol}`),
          item.bar, item.text);
        algoItems.set(order.id, item);
        algoList.append(item.li);
      }
      if (order.order_type === "twap") {
        item.bar.max = progress.slices_total;
        item.bar.value = progress.slices_done;
        item.bar.setAttribute("aria-label", `${progress.slices_done} of ${progress.slices_total} slices`);
        item.text.textContent = `${progress.slices_done}/${progress.slices_total} slices · filled ${progress.filled_quantity}`
          + ` · avg ${amount(progress.average_price)} · market VWAP ${amount(progress.market_vwap)}`
          + ` · slippage ${amount(progress.slippage_bps)} bps${progress.paused ? " · paused" : ""}`;
      } else {
        // The bar is drawn from the API's strings; the figures beside it are the strings themselves.
        item.bar.max = Number(order.quantity);
        item.bar.value = Number(progress.filled_quantity);
        item.bar.setAttribute("aria-label", `filled ${progress.filled_quantity} of ${order.quantity}`);
        item.text.textContent = `filled ${progress.filled_quantity} · visible ${progress.visible} · hidden ${progress.hidden}`
          + ` · avg ${amount(progress.average_price)}${progress.paused ? " · paused" : ""}`;
      }
    }));
    for (const [id, item] of algoItems) {
      if (!seen.has(id)) {
        item.li.remove();
        algoItems.delete(id);
      }
    }
  }

  // -- positions, balances ----------------------------------------------------------------------------------
  const positionsPanel = panel("Positions", { id: "positions" });
  const positionsTable = new KeyedTable([
    { label: "Symbol", value: (p) => p.symbol },
    { label: "Strategy", value: (p) => p.strategy_id || "—" },
    { label: "Quantity", value: (p) => p.quantity, num: true },
    { label: "Avg entry", value: (p) => amount(p.average_entry_price), num: true },
    { label: "Mark", value: (p) => amount(p.mark_price), num: true },
    { label: "Unrealized PnL", value: (p) => amount(p.unrealized_pnl), num: true },
    { label: "Realized PnL", value: (p) => p.realized_pnl, num: true },
    { label: "Fees", value: (p) => p.fees, num: true },
  ], { key: (p) => `${p.account_id}|${p.strategy_id || ""}|${p.exchange}|${p.symbol}`, label: "Positions",
    empty: "No positions." });
  positionsPanel.body.append(positionsTable.element);

  const balancesPanel = panel("Balances", { id: "balances" });
  const balancesTable = new KeyedTable([
    { label: "Asset", value: (b) => b.asset },
    { label: "Available", value: (b) => b.available, num: true },
    { label: "Locked", value: (b) => b.locked, num: true },
    { label: "Total", value: (b) => b.total, num: true },
  ], { key: (b) => `${b.account_id}|${b.asset}`, label: "Balances", empty: "No balances." });
  balancesPanel.body.append(balancesTable.element);

  // -- fills, history, ledger -------------------------------------------------------------------------------
  const fillsPanel = panel("Fills", { id: "fills" });
  const fillsTable = new KeyedTable([
    { label: "Time", value: (t) => time(t.executed_at) },
    { label: "Symbol", value: (t) => t.symbol },
    { label: "Side", value: (t) => t.side },
    { label: "Quantity", value: (t) => t.quantity, num: true },
    { label: "Price", value: (t) => t.price, num: true },
    { label: "Fee", value: (t) => `${t.fee} ${t.fee_currency || ""}`.trim(), num: true },
    { label: "Liquidity", value: (t) => t.liquidity },
    { label: "Realized PnL", value: (t) => t.realized_pnl, num: true },
  ], { label: "Fills", empty: "No fills yet.", rowClass: (t) => t.side });
  fillsPanel.body.append(fillsTable.element);

  const historyStatus = h("select", { "aria-label": "Status filter", id: "history-status" },
    h("option", { value: "" }, "any status"),
    ["filled", "canceled", "denied", "rejected", "expired", ...OPEN_STATUSES].map((s) => h("option", { value: s }, s)));
  const historySide = h("select", { "aria-label": "Side filter", id: "history-side" },
    h("option", { value: "" }, "any side"), h("option", { value: "buy" }, "buy"), h("option", { value: "sell" }, "sell"));
  const historySymbol = h("select", { "aria-label": "Symbol filter", id: "history-symbol" },
    h("option", { value: "" }, "any symbol"), SYMBOLS.map((s) => h("option", { value: s }, s)));
  for (const [control, name] of [[historyStatus, "status"], [historySide, "side"], [historySymbol, "symbol"]]) {
    control.addEventListener("change", () => {
      state.history[name] = control.value;
      refreshHistory();
    });
  }
  const historyPanel = panel("History", { id: "history", wide: true, tools: [historyStatus, historySide, historySymbol] });
  const historyTable = new KeyedTable([
    { label: "Created", value: (o) => dateTime(o.created_at) },
    { label: "Symbol", value: (o) => o.symbol },
    { label: "Side", value: (o) => o.side },
    { label: "Type", value: (o) => o.order_type },
    { label: "Quantity", value: (o) => o.quantity, num: true },
    { label: "Filled", value: (o) => o.filled_quantity, num: true },
    { label: "Avg price", value: (o) => amount(o.average_price), num: true },
    { label: "Status", value: (o) => o.status },
    { label: "Reason", value: (o) => o.reject_reason || "", wrap: true },
  ], { label: "Order history", empty: "No orders match." });
  const historyMessage = h("p", { class: "message" });
  historyPanel.body.append(historyMessage, historyTable.element);

  const ledgerPanel = panel("Ledger", { id: "ledger", wide: true });
  const ledgerTable = new KeyedTable([
    { label: "Time", value: (e) => dateTime(e.created_at) },
    { label: "Asset", value: (e) => e.asset },
    { label: "Bucket", value: (e) => e.bucket },
    { label: "Amount", value: (e) => e.amount, num: true },
    { label: "Reason", value: (e) => e.reason },
  ], { label: "Ledger", empty: "No ledger entries." });
  ledgerPanel.body.append(ledgerTable.element);

  // A change of the trading state reaches traders on the event stream: say it above everything else.
  const banner = h("p", { class: "banner", id: "trading-banner", role: "status", hidden: true });
  function showTradingState(change) {
    if (!change || !change.state) return;
    const scope = change.scope === "global" ? "for everyone" : `for ${change.scope} ${change.scope_id}`;
    banner.hidden = change.state === "active";
    banner.dataset.state = change.state;
    banner.textContent = `Trading is ${change.state} ${scope}${change.reason ? `: ${change.reason}` : ""}`
      + ` (set by ${change.updated_by} at ${time(change.updated_at)}).`;
  }
  root.append(banner);

  root.append(h("div", { class: "grid trade" }, chartPanel.section, ticketPanel.section, openPanel.section,
    positionsPanel.section, balancesPanel.section, fillsPanel.section, algoPanel.section, historyPanel.section,
    ledgerPanel.section));

  // -- reading the API --------------------------------------------------------------------------------------
  let openOrders = [];
  let recentFills = [];

  async function refreshMarket() {
    try {
      const answer = await api("GET", `/markets/${state.symbol.replace("/", "-")}/candles${query({
        interval_seconds: state.interval, limit: 240 })}`);
      chart.setCandles(answer);
      lastPrice.textContent = answer.last_price ? `last ${answer.last_price}` : "";
      say(chartError, "");
    } catch (error) {
      say(chartError, error.message);
    }
  }
  async function refreshOrders() {
    try {
      const page = await api("GET", `/orders${query({ status: OPEN_STATUSES, limit: 100 })}`);
      openOrders = page.items;
      openTable.update(openOrders);
      say(openMessage, "");
      chart.mark(recentFills.filter((t) => t.symbol === state.symbol), openOrders.filter((o) => o.symbol === state.symbol
        && ["accepted", "partially_filled", "untriggered", "pending_replace"].includes(o.status) && !o.parent_order_id));
      await refreshAlgorithms(openOrders);
    } catch (error) {
      say(openMessage, error.message);
    }
  }
  async function refreshHistory() {
    const { status, side, symbol } = state.history;
    try {
      historyTable.update((await api("GET", `/orders${query({ status, side, symbol, limit: 30 })}`)).items);
      say(historyMessage, "");
    } catch (error) {
      say(historyMessage, error.message);
    }
  }
  async function refreshFills() {
    try {
      const page = await api("GET", `/trades${query({ limit: 50 })}`);
      recentFills = page.items;
      fillsTable.update(recentFills.slice(0, 20));
      chart.mark(recentFills.filter((t) => t.symbol === state.symbol), [...chart.lines.values()].map((line) => line.order));
    } catch {
      /* shown by the orders panel when the service is unreachable */
    }
  }
  async function refreshPositions() {
    try {
      positionsTable.update(await api("GET", "/positions"));
    } catch {
      /* as above */
    }
  }
  async function refreshBalances() {
    try {
      const [balances, ledger] = await Promise.all([api("GET", "/balances"), api("GET", `/balances/ledger${query({ limit: 20 })}`)]);
      balancesTable.update(balances);
      ledgerTable.update(ledger.items);
    } catch {
      /* as above */
    }
  }
  function refreshAll() {
    refreshOrders();
    refreshHistory();
    refreshFills();
    refreshPositions();
    refreshBalances();
  }

  stops.push(live.watch(["order"], () => { refreshOrders(); refreshHistory(); }));
  stops.push(live.watch(["fill"], () => { refreshFills(); refreshPositions(); }));
  stops.push(live.watch(["position"], refreshPositions));
  stops.push(live.watch(["balance"], refreshBalances));
  stops.push(live.watch(["risk.trading_state"], (frame) => frame && showTradingState(frame.data)));
  // Prices move without events of the user's own: the chart and the marks of the positions follow the market.
  const marketTimer = setInterval(() => { refreshMarket(); refreshPositions(); }, MARKET_REFRESH_MS);
  refreshMarket();
  refreshAll();
  return () => {
    clearInterval(marketTimer);
    stops.forEach((stop) => stop());
  };
}
