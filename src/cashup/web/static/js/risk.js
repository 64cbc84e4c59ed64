// The risk page (risk, admin): the trading state with the kill switch, limits per scope, exposure by symbol,
// strategy and user, denials by rule over time, and the largest positions.

import { api, query } from "./api.js";
import { amount, dateTime, h, KeyedTable, panel, say, time } from "./dom.js";

const REFRESH_MS = 3000;
const LIMIT_FIELDS = [
  ["max_order_value", "Max order value"], ["max_position_value", "Max position value"],
  ["max_open_orders", "Max open orders"], ["price_band", "Price band"],
  ["max_orders_per_minute_user", "Orders/min per user"], ["max_orders_per_minute_account", "Orders/min per account"],
];
const COUNT_LIMITS = new Set(["max_open_orders", "max_orders_per_minute_user", "max_orders_per_minute_account"]);
const STATES = [
  ["active", "Active", "Orders flow normally."],
  ["reducing", "Reducing", "Only orders that reduce a position are let through."],
  ["halted", "Halted", "Every new order is refused and open orders are canceled."],
];

export function riskPage(root, { live }) {
  const stops = [];

  // -- trading state and kill switch ------------------------------------------------------------------------
  const statePanel = panel("Trading state", { id: "trading-state" });
  const effective = h("p", { class: "state-badge", id: "effective-state", role: "status" });
  const stateMessage = h("p", { class: "message", id: "state-message" });
  const scopeUser = h("input", { id: "state-user", placeholder: "everyone", autocomplete: "off", size: 12 });
  const switches = STATES.map(([state, label, help]) => h("button", {
    type: "button", class: `switch ${state}`, dataset: { state }, title: help, "aria-describedby": "switch-help",
  }, label));
  const statesTable = new KeyedTable([
    { label: "Scope", value: (s) => (s.scope_id ? `${s.scope} ${s.scope_id}` : s.scope) },
    { label: "State", value: (s) => s.state },
    { label: "Reason", value: (s) => s.reason || "", wrap: true },
    { label: "Set by", value: (s) => s.updated_by },
    { label: "At", value: (s) => dateTime(s.updated_at) },
  ], { key: (s) => `${s.scope}|${s.scope_id || ""}`, label: "Trading states", empty: "No state set: trading is active." });
  statePanel.body.append(effective,
    h("div", { class: "kill-switch", role: "group", "aria-label": "Kill switch" }, switches),
    h("div", { class: "field inline" }, h("label", { for: "state-user" }, "For user"), scopeUser),
    h("p", { class: "hint", id: "switch-help" }, "Halted refuses every new order and cancels the open ones; "
      + "reducing lets only risk-reducing orders through. Leave the user empty to switch everyone."),
    stateMessage, statesTable.element);

  const reason = h("textarea", { id: "state-reason", rows: 3, required: true, maxlength: 255 });
  const confirmText = h("p", { id: "confirm-text" });
  const confirmButton = h("button", { type: "submit", id: "confirm-state", class: "danger" }, "Confirm");
  const dialogError = h("p", { class: "message" });
  const dialog = h("dialog", { id: "confirm-dialog", "aria-labelledby": "confirm-title" },
    h("form", { method: "dialog" },
      h("h2", { id: "confirm-title" }, "Change the trading state"), confirmText,
      h("label", { for: "state-reason" }, "Reason (kept with the change)"), reason, dialogError,
      h("div", { class: "actions" }, h("button", { type: "button", class: "quiet", value: "cancel", id: "cancel-state",
        onclick: () => dialog.close() }, "Cancel"), confirmButton)));
  document.body.append(dialog);
  let pending = null;
  for (const button of switches) {
    button.addEventListener("click", () => {
      pending = button.dataset.state;
      const who = scopeUser.value.trim();
      confirmText.textContent = `Set trading to ${pending.toUpperCase()} for ${who ? `user ${who}` : "everyone"}?`
        + ` ${STATES.find(([state]) => state === pending)[2]}`;
      confirmButton.className = pending === "active" ? "" : "danger";
      reason.value = "";
      say(dialogError, "");
      dialog.showModal();
      reason.focus();
    });
  }
  dialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!reason.value.trim()) {
      say(dialogError, "Give a reason: it is kept with the change.");
      return;
    }
    confirmButton.disabled = true;
    try {
      const who = scopeUser.value.trim();
      const answer = await api("PUT", "/risk/trading-state", {
        state: pending, reason: reason.value.trim(), ...(who ? { user_id: who } : {}),
      });
      dialog.close();
      say(stateMessage, `Trading is ${answer.state} for ${answer.scope_id ? `user ${answer.scope_id}` : "everyone"}`
        + (answer.canceled_orders ? `; ${answer.canceled_orders} open orders canceled.` : "."), "note");
      refreshState();
    } catch (error) {
      say(dialogError, error.message);
    } finally {
      confirmButton.disabled = false;
    }
  });

  // -- limits -----------------------------------------------------------------------------------------------
  const limitsPanel = panel("Limits", { id: "limits", wide: true });
  const limitsMessage = h("p", { class: "message", id: "limits-message" });
  const limitsTable = new KeyedTable([
    { label: "Scope", value: (l) => (l.scope_id ? `${l.scope} ${l.scope_id}` : l.defaults ? "defaults" : l.scope) },
    ...LIMIT_FIELDS.map(([name, label]) => ({ label, value: (l) => (l[name] === null ? "—" : String(l[name])), num: true })),
    { label: "Updated", value: (l) => (l.updated_by ? `${l.updated_by} ${time(l.updated_at)}` : "") },
    { label: "", cell: (l, td, created) => {
      if (created) {
        td.append(h("button", { type: "button", class: "secondary small", "aria-label": "Edit these limits",
          onclick: () => edit(td.limits) }, "Edit"));
      }
      td.limits = l;
    } },
  ], { key: (l) => (l.defaults ? "defaults" : `${l.scope}|${l.scope_id || ""}`), label: "Risk limits" });
  const scope = h("select", { id: "limit-scope" }, ["global", "user", "account", "strategy"].map((s) => h("option", { value: s }, s)));
  const scopeId = h("input", { id: "limit-scope_id", autocomplete: "off", placeholder: "empty for global" });
  const inputs = Object.fromEntries(LIMIT_FIELDS.map(([name]) => [name, h("input", {
    id: `limit-${name}`, name, inputmode: "decimal", autocomplete: "off", placeholder: "no limit" })]));
  const limitForm = h("form", { class: "limits-form", id: "limits-form" },
    h("div", { class: "row" },
      h("div", { class: "field" }, h("label", { for: "limit-scope" }, "Scope"), scope),
      h("div", { class: "field" }, h("label", { for: "limit-scope_id" }, "Scope id"), scopeId),
      LIMIT_FIELDS.map(([name, label]) => h("div", { class: "field" }, h("label", { for: `limit-${name}` }, label), inputs[name]))),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save limits")));
  limitsPanel.body.append(limitsMessage, limitsTable.element, limitForm);

  function edit(limits) {
    scope.value = limits.defaults ? "global" : limits.scope;
    scopeId.value = limits.scope_id || "";
    for (const [name] of LIMIT_FIELDS) inputs[name].value = limits[name] === null ? "" : String(limits[name]);
    inputs.max_order_value.focus();
  }
  limitForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { scope: scope.value };
    if (scopeId.value.trim()) body.scope_id = scopeId.value.trim();
    for (const [name] of LIMIT_FIELDS) {
      const value = inputs[name].value.trim();
      if (value) body[name] = COUNT_LIMITS.has(name) ? Number(value) : value;
    }
    try {
      await api("PUT", "/risk/limits", body);
      say(limitsMessage, `Limits of ${body.scope}${body.scope_id ? ` ${body.scope_id}` : ""} saved.`, "note");
      refreshLimits();
    } catch (error) {
      say(limitsMessage, error.message);
    }
  });

  // -- exposure, largest positions, denials -----------------------------------------------------------------
  const exposureColumns = (what) => [
    { label: what, value: (l) => l.key },
    { label: "Ccy", value: (l) => l.currency },
    { label: "Long", value: (l) => l.long, num: true },
    { label: "Short", value: (l) => l.short, num: true },
    { label: "Net", value: (l) => l.net, num: true },
    { label: "Gross", value: (l) => l.gross, num: true },
    { label: "Positions", value: (l) => String(l.positions), num: true },
  ];
  const exposureKey = (l) => `${l.key}|${l.currency}`;
  const bySymbol = new KeyedTable(exposureColumns("Symbol"), { key: exposureKey, caption: "By symbol", empty: "No open positions." });
  const byStrategy = new KeyedTable(exposureColumns("Strategy"), { key: exposureKey, caption: "By strategy", empty: "No open positions." });
  const byUser = new KeyedTable(exposureColumns("User"), { key: exposureKey, caption: "By user", empty: "No open positions." });
  const exposurePanel = panel("Exposure at the mark", { id: "exposure" });
  const exposureMessage = h("p", { class: "message" });
  exposurePanel.body.append(exposureMessage, h("div", { class: "stack" }, bySymbol.element, byStrategy.element, byUser.element));

  const largestPanel = panel("Largest positions", { id: "largest" });
  const largestTable = new KeyedTable([
    { label: "User", value: (p) => p.user_id },
    { label: "Symbol", value: (p) => p.symbol },
    { label: "Strategy", value: (p) => p.strategy_id || "—" },
    { label: "Quantity", value: (p) => p.quantity, num: true },
    { label: "Mark", value: (p) => p.mark_price, num: true },
    { label: "Notional", value: (p) => `${p.notional} ${p.currency}`, num: true },
  ], { key: (p) => `${p.account_id}|${p.strategy_id || ""}|${p.exchange}|${p.symbol}`, label: "Largest positions",
    empty: "No open positions." });
  largestPanel.body.append(largestTable.element);

  const denialsPanel = panel("Denials by rule, last 24 h", { id: "denials" });
  const denialTotals = h("ul", { class: "totals", "aria-label": "Denials by rule" });
  const denialsTable = new KeyedTable([
    { label: "Hour", value: (b) => dateTime(b.start) },
    { label: "Denials by rule", cell: (b, td) => {
      td.replaceChildren(...Object.entries(b.counts).map(([rule, count]) => h("span", { class: "rule-count" },
        h("span", { class: "bar", style: `width: ${Math.min(count, 30) * 8}px` }), `${rule} ${count}`)));
    } },
  ], { key: (b) => b.start, label: "Denials over time", empty: "No order was denied in the last 24 hours." });
  denialsPanel.body.append(denialTotals, denialsTable.element);

  root.append(h("div", { class: "grid risk" }, statePanel.section, denialsPanel.section, limitsPanel.section,
    exposurePanel.section, largestPanel.section));

  async function refreshState() {
    try {
      const view = await api("GET", "/risk/trading-state");
      effective.textContent = `Trading is ${view.effective}`;
      effective.dataset.state = view.effective;
      statesTable.update(view.states);
    } catch (error) {
      say(stateMessage, error.message);
    }
  }
  async function refreshLimits() {
    try {
      const view = await api("GET", "/risk/limits");
      limitsTable.update([{ ...view.defaults, defaults: true }, ...view.limits]);
    } catch (error) {
      say(limitsMessage, error.message);
    }
  }
  async function refreshExposure() {
    try {
      const view = await api("GET", `/risk/exposure${query({ largest: 10 })}`);
      bySymbol.update(view.by_symbol);
      byStrategy.update(view.by_strategy);
      byUser.update(view.by_user);
      largestTable.update(view.largest);
      say(exposureMessage, view.unpriced ? `${view.unpriced} positions have no market price now and are left out.` : "", "note");
    } catch (error) {
      say(exposureMessage, error.message);
    }
  }
  async function refreshDenials() {
    try {
      const view = await api("GET", `/risk/denials${query({ hours: 24, bucket_minutes: 60 })}`);
      denialTotals.replaceChildren(...Object.entries(view.totals).map(([rule, count]) => h("li", {},
        h("span", {}, rule), h("span", { class: "num" }, String(count)))));
      denialsTable.update([...view.buckets].reverse());
    } catch {
      /* shown by the state panel when the service is unreachable */
    }
  }
  const all = () => { refreshState(); refreshExposure(); refreshDenials(); };
  stops.push(live.watch(["risk"], () => { refreshState(); refreshLimits(); }));
  const timer = setInterval(all, REFRESH_MS);
  all();
  refreshLimits();
  return () => {
    clearInterval(timer);
    stops.forEach((stop) => stop());
    dialog.remove();
  };
}
