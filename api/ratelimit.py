"""Throttling: requests per minute per caller, and queries at once per user.

Every API route takes its caller from ``caller`` (a FastAPI dependency): it
authenticates through ``alertlab.api.auth`` and charges one request to the
caller's token bucket (users by name, callers without a valid token by
address), answering 429 with ``Retry-After`` when the bucket is empty. A
bucket holds one minute of the class's rate (``alertlab.api.classes``) and
refills continuously, so a burst is allowed and a steady caller gets exactly
its rate.

Queries also take a *slot* (``query_slot``) for as long as they run,
including the time a streamed result takes to download: a user holding all
their slots gets 429 until one is given back.

The state is in the memory of the service process (the hub runs one), held
by the app (``app.state.limiter``)."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict

from fastapi import Request
from starlette.responses import JSONResponse

from alertlab.api import auth
from alertlab.api.auth import HubUser
from alertlab.api.classes import ANONYMOUS, limits, user_class


class RateLimited(Exception):
    """Too many requests (429): ``retry_after`` seconds until the next one is allowed."""

    def __init__(self, retry_after: float, message: str):
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(message)


class Limiter:
    """Token buckets per key, and counted slots per key; thread-safe."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple, tuple[float, float]] = {}  # key -> (tokens, when)
        self._slots: dict[tuple, int] = defaultdict(int)

    def take(self, key: tuple, per_minute: int) -> float:
        """Spend one request of ``key``: 0 when allowed, else the seconds until one is."""
        capacity, rate = float(per_minute), per_minute / 60.0
        with self._lock:
            now = self._clock()
            tokens, when = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - when) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:  # a bucket untouched for a minute is full: forget it
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60.0}
            return (1.0 - tokens) / rate

    def acquire(self, key: tuple, cap: int) -> bool:
        with self._lock:
            if self._slots[key] >= cap:
                return False
            self._slots[key] += 1
            return True

    def release(self, key: tuple) -> None:
        with self._lock:
            self._slots[key] = max(0, self._slots[key] - 1)
            if not self._slots[key]:
                del self._slots[key]

    def in_use(self, key: tuple) -> int:
        with self._lock:
            return self._slots.get(key, 0)


def limiter(app) -> Limiter:
    if getattr(app.state, "limiter", None) is None:
        app.state.limiter = Limiter()
    return app.state.limiter


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def caller(request: Request) -> HubUser:
    """FastAPI dependency: the authenticated caller, after charging one request to its bucket."""
    user = getattr(request.state, "charged_user", None)
    if user is not None:
        return user
    lim = limiter(request.app)
    try:
        user = await auth.current_user(request)
    except (auth.NotAuthenticated, auth.Forbidden):
        wait = lim.take(("address", _address(request)), limits(ANONYMOUS).requests_per_minute)
        if wait:
            raise RateLimited(wait, "too many requests without a valid token from this address: "
                                    f"try again in {math.ceil(wait)} s") from None
        raise
    klass = user_class(user)
    per_minute = limits(klass).requests_per_minute
    wait = lim.take(("user", user.name), per_minute)
    if wait:
        raise RateLimited(wait, f"rate limit: {per_minute} requests per minute for a {klass} "
                                f"(see /api/docs); try again in {math.ceil(wait)} s")
    request.state.charged_user = user
    return user


class QuerySlot:
    """One of the user's query slots, held until ``release()`` (idempotent)."""

    def __init__(self, lim: Limiter, key: tuple):
        self._lim, self._key, self._held = lim, key, True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lim.release(self._key)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def query_slot(request: Request, user: HubUser) -> QuerySlot:
    """Take one of the user's query slots, or raise RateLimited (429) when all are in use."""
    cap = limits(user_class(user)).concurrent_queries
    lim = limiter(request.app)
    key = ("queries", user.name)
    if not lim.acquire(key, cap):
        raise RateLimited(1, f"you already have {cap} queries running, the most a {user_class(user)} may run "
                             "at once: wait for one to finish (or use an asynchronous query)")
    return QuerySlot(lim, key)


def install(app) -> None:
    """Answer RateLimited with 429 and Retry-After."""

    async def too_many(request, exc: RateLimited):
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})

    app.add_exception_handler(RateLimited, too_many)
