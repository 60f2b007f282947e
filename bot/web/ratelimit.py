"""A token bucket per client address: ``rate`` requests per second on average, ``burst`` at once.

The table is bounded (the least recently seen addresses are forgotten first), so a flood of addresses
costs memory only up to ``MAX_CLIENTS``. Behind a reverse proxy every client has the proxy's address:
limit there instead (``rate = 0`` switches this one off).
"""

from __future__ import annotations

import time
from collections import OrderedDict

MAX_CLIENTS = 10_000


class RateLimiter:
    """Decides whether a client may make a request now."""

    def __init__(self, rate: float, burst: int, max_clients: int = MAX_CLIENTS) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, when)

    def allow(self, client: str, now: float | None = None) -> float:
        """0.0 when ``client`` may go ahead (one token spent), else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, when = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - when) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self._buckets[client] = (tokens - 1 if not wait else tokens, now)  # most recent last
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
