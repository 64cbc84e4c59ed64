"""Failpoints for reliability tests: ``CASHUP_CRASH_AT=<point>:<client order id suffix>`` kills the process.

The kill is a real ``SIGKILL`` at a named point of the work, so tests can prove that nothing is lost or
done twice wherever a worker dies. Unset (always, outside those tests) it does nothing.
"""

import os
import signal

BEFORE_SEND = "before_send"
"""The order is committed as submitted; the venue has not been called."""
AFTER_ACCEPT = "after_accept"
"""The venue accepted the order and its report is being booked, not yet committed."""
RELAY_AFTER_CONFIRM = "relay_after_confirm"
"""The broker confirmed a batch of events; the relay has not marked them sent (the suffix matches event ids)."""


def crash_point(point: str, client_order_id: str) -> None:
    spec = os.environ.get("CASHUP_CRASH_AT")
    if not spec:
        return
    name, _, suffix = spec.partition(":")
    if name == point and client_order_id.endswith(suffix):
        os.kill(os.getpid(), signal.SIGKILL)
