"""Prometheus metrics of the service, defined once."""

from prometheus_client import Counter, Gauge, Histogram

ORDER_TRANSITIONS = Counter(
    "cashup_order_transitions_total", "Orders entering a status, by order type and status", ["order_type", "status"]
)
ORDERS_CREATED = Counter("cashup_orders_created_total", "Orders created, by order type", ["order_type"])
ORDERS_BY_STATUS = Gauge("cashup_orders", "Orders currently in each status", ["status"])
FILLS = Counter("cashup_fills_total", "Executions booked, by liquidity", ["liquidity"])
REQUEST_LATENCY = Histogram(
    "cashup_http_request_duration_seconds",
    "HTTP request latency by method, route and status",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ORDER_TO_ACK = Histogram("cashup_order_to_ack_seconds", "From order creation to venue acknowledgement")
ACK_TO_FILL = Histogram("cashup_ack_to_fill_seconds", "From order creation to its first fill")
VENUE_ERRORS = Counter("cashup_venue_errors_total", "Venue call failures by venue and error class", ["venue", "error"])
WORK_STEPS = Counter("cashup_work_steps_total", "Work items executed by action and outcome", ["action", "outcome"])
IGNORED_REPORTS = Counter("cashup_ignored_reports_total", "Venue reports that did not apply", ["kind"])
RISK_DENIALS = Counter("cashup_risk_denials_total", "Orders denied by a risk rule", ["rule"])
FAILURES = Counter("cashup_failures_total", "Work recorded in the failure table, by kind", ["kind"])
RETRIES = Counter("cashup_retries_total", "Work steps scheduled again after a transient failure", ["action"])
WORK_QUEUE_DEPTH = Gauge("cashup_work_queue_depth", "Orders whose next action is due")
WORK_QUEUE_AGE = Gauge("cashup_work_queue_oldest_due_seconds", "Age of the oldest due action")
INTAKE_CONSUMED = Counter("cashup_intake_consumed_total", "Order-request messages consumed, by broker", ["broker"])
INTAKE_OUTCOMES = Counter("cashup_intake_outcomes_total", "Order requests answered, by outcome", ["outcome"])
INTAKE_DUPLICATES = Counter("cashup_intake_duplicates_total", "Order requests seen again (repeats and redeliveries)")
INTAKE_REDELIVERED = Counter("cashup_intake_redelivered_total", "Messages the broker marked as redelivered")
INTAKE_FAILURES = Counter("cashup_intake_failures_total", "Order requests that became failures, by reason", ["reason"])
INTAKE_LATENCY = Histogram(
    "cashup_intake_consume_to_commit_seconds", "From a message's delivery to its order's commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INTAKE_LAG = Gauge("cashup_intake_lag", "Messages waiting behind the consumer, where the broker reports it", ["broker"])
COMPENSATION_RUNS = Counter("cashup_compensation_runs_total", "Failure retries, by trigger and outcome",
                            ["trigger", "outcome"])
