// The operations page (admin): the work queue, live workers, the failure table with retry and discard,
// venue accounts and their health, and the intake counters.

import { api, query } from "./api.js";
import { amount, dateTime, facts, h, KeyedTable, panel, say } from "./dom.js";

const REFRESH_MS = 3000;

export function opsPage(root, { live }) {
  const stops = [];

  const queuePanel = panel("Work queue", { id: "queue" });
  const queueFacts = h("div");
  const queueMessage = h("p", { class: "message" });
  queuePanel.body.append(queueMessage, queueFacts);

  const workersPanel = panel("Workers", { id: "workers", wide: true });
  const workersTable = new KeyedTable([
    { label: "Worker", value: (w) => w.id },
    { label: "Concurrency", value: (w) => String(w.concurrency), num: true },
    { label: "Started", value: (w) => dateTime(w.started_at) },
    { label: "Heartbeat", value: (w) => dateTime(w.heartbeat_at) },
  ], { label: "Live workers", empty: "No worker is alive." });
  workersPanel.body.append(workersTable.element);

  const failureStatus = h("select", { id: "failure-status", "aria-label": "Failure status filter" },
    h("option", { value: "" }, "any status"), ["pending", "processing", "failed", "success"].map((s) => h("option", { value: s }, s)));
  failureStatus.addEventListener("change", () => refreshFailures());
  const failuresPanel = panel("Failures", { id: "failures", wide: true, tools: [failureStatus] });
  const failuresMessage = h("p", { class: "message", id: "failures-message" });
  const failuresTable = new KeyedTable([
    { label: "Created", value: (f) => dateTime(f.created_at) },
    { label: "Kind", value: (f) => f.kind },
    { label: "Order", value: (f) => f.order_id || "—" },
    { label: "Error", value: (f) => f.error, wrap: true },
    { label: "Retries", value: (f) => String(f.retry_count), num: true },
    { label: "Status", value: (f) => f.status },
    { label: "Next retry", value: (f) => dateTime(f.next_retry_at) || "—" },
    { label: "", cell: (f, td, created) => failureActions(f, td, created) },
  ], { label: "Failures", empty: "No failures." });
  failuresPanel.body.append(failuresMessage, failuresTable.element);

  function failureActions(failure, td, created) {
    if (created) {
      const retry = h("button", { type: "button", class: "small", dataset: { action: "retry" },
        "aria-label": `Retry failure ${failure.id}` }, "Retry");
      const discard = h("button", { type: "button", class: "danger small", dataset: { action: "discard" },
        "aria-label": `Discard failure ${failure.id}` }, "Discard");
      td.append(h("div", { class: "row-actions" }, retry, discard));
      for (const [button, verb] of [[retry, "retry"], [discard, "discard"]]) {
        button.addEventListener("click", async () => {
          if (verb === "discard" && !window.confirm("Discard this failure? Its work will not be retried.")) return;
          button.disabled = true;
          try {
            const answer = await api("POST", `/failures/${td.dataset.id}/${verb}`);
            say(failuresMessage, `Failure ${answer.id} is now ${answer.status}.`, "note");
            refreshFailures();
            refreshQueue();
          } catch (error) {
            say(failuresMessage, `${verb === "retry" ? "Retry" : "Discard"} failed: ${error.message}`);
          } finally {
            button.disabled = false;
          }
        });
      }
    }
    td.dataset.id = failure.id;
    const open = failure.status === "failed" || failure.status === "pending";
    td.querySelector("[data-action=retry]").disabled = !open;
    td.querySelector("[data-action=discard]").disabled = !open;
  }

  const accountsPanel = panel("Venue accounts", { id: "accounts", wide: true });
  const accountsMessage = h("p", { class: "message" });
  const accountsTable = new KeyedTable([
    { label: "Label", value: (a) => a.label },
    { label: "User", value: (a) => a.user_id },
    { label: "Exchange", value: (a) => `${a.exchange} ${a.market}${a.sandbox ? " (sandbox)" : ""}` },
    { label: "Health", value: (a) => a.status + (a.broken_reason ? `: ${a.broken_reason}` : ""), wrap: true },
    { label: "Key", value: (a) => (a.has_credentials ? `…${a.api_key_hint || ""}` : "none") },
    { label: "Enabled", value: (a) => (a.enabled ? "yes" : "no") },
  ], { label: "Venue accounts", empty: "No venue accounts registered (the paper exchange needs none).",
    rowClass: (a) => `health-${a.status}` });
  const readiness = h("div", { id: "readiness" });
  accountsPanel.body.append(accountsMessage, h("h3", { class: "sub" }, "Readiness"), readiness,
    h("h3", { class: "sub" }, "Accounts"), accountsTable.element);

  const intakePanel = panel("Intake", { id: "intake" });
  const intakeTable = new KeyedTable([
    { label: "Counter", value: (c) => c.name },
    { label: "Labels", value: (c) => c.labels },
    { label: "Value", value: (c) => c.value, num: true },
  ], { key: (c) => `${c.name}${c.labels}`, label: "Intake counters",
    empty: "No intake counters here: no intake consumer runs in this process (`cashup intake` reports on its own /metrics)." });
  intakePanel.body.append(intakeTable.element);

  root.append(h("div", { class: "grid ops" }, queuePanel.section, intakePanel.section, workersPanel.section,
    failuresPanel.section, accountsPanel.section));

  async function refreshQueue() {
    try {
      const status = await api("GET", "/orders/queue/status");
      queueFacts.replaceChildren(facts([
        ["Due", String(status.due)], ["Scheduled", String(status.scheduled)],
        ["In progress", String(status.in_progress)], ["Retrying", String(status.retrying)],
        ["Failed", String(status.failed)], ["Oldest due (s)", amount(status.oldest_due_age_seconds)],
        ["Workers alive", String(status.workers_alive)],
        ...Object.entries(status.by_action).map(([action, count]) => [`Waiting: ${action}`, String(count)]),
      ], { tiles: true }));
      workersTable.update(status.workers);
      say(queueMessage, "");
    } catch (error) {
      say(queueMessage, error.message);
    }
  }
  async function refreshFailures() {
    try {
      failuresTable.update((await api("GET", `/failures${query({ status: failureStatus.value, limit: 100 })}`)).items);
    } catch (error) {
      say(failuresMessage, error.message);
    }
  }
  async function refreshAccounts() {
    try {
      const [list, ready] = await Promise.all([api("GET", "/accounts"), fetch("/health/ready").then((r) => r.json())]);
      accountsTable.update(list.accounts);
      readiness.replaceChildren(facts(Object.entries(ready.checks || {}).map(([name, check]) => [name,
        typeof check === "object" ? (check.status || JSON.stringify(check)) : String(check), false]), { tiles: true }));
      say(accountsMessage, "");
    } catch (error) {
      say(accountsMessage, error.message);
    }
  }
  async function refreshIntake() {
    try {
      const text = await (await fetch("/metrics")).text();
      const counters = [];
      for (const line of text.split("\n")) {
        const match = /^(cashup_intake_[a-z_]+?)(_total)?(\{[^}]*\})?\s+(\S+)$/.exec(line);
        if (match && !/_(created|bucket|sum|count)$/.test(match[1])) {
          counters.push({ name: match[1], labels: match[3] || "", value: match[4] });
        }
      }
      intakeTable.update(counters);
    } catch {
      intakeTable.update([]);
    }
  }

  const all = () => { refreshQueue(); refreshFailures(); refreshAccounts(); refreshIntake(); };
  stops.push(live.watch(["order", "failure"], () => { refreshQueue(); refreshFailures(); }));
  const timer = setInterval(all, REFRESH_MS);
  all();
  return () => {
    clearInterval(timer);
    stops.forEach((stop) => stop());
  };
}
