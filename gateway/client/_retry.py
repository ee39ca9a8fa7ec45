"""Retries of transient failures: capped exponential backoff with jitter, one request id.

Which failures are retried (and nothing else, ever):

1. ``UNAVAILABLE``: the gateway was unreachable, draining, or its journal was down (it fails
   closed, so nothing was committed) -- or the answer was lost after a commit, which is why
   every write carries a request id generated once per logical operation and reused by every
   attempt (AIP-155): the gateway answers a replay with the first answer and changes nothing.
2. ``DEADLINE_EXCEEDED`` of one attempt, when the call is idempotent and the overall deadline
   has not passed (only possible with a per-attempt deadline shorter than the overall one).
3. ``RESOURCE_EXHAUSTED`` that carries ``google.rpc.RetryInfo`` (the member's rate limit): wait
   at least the server's ``retry_delay``. Without RetryInfo it is a hard limit (a message over
   the size limit) and is not retried.

``INVALID_ARGUMENT``, ``PERMISSION_DENIED``, ``NOT_FOUND``, ``FAILED_PRECONDITION``,
``UNAUTHENTICATED`` and the rest describe the request or the caller: the same request would
fail the same way, so they are raised at once.
"""

# ruff: noqa: ASYNC109 - `timeout` is the gRPC deadline sent to the server, not a local timer

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from gateway.client._errors import (
    DeadlineExceededError,
    ResourceExhaustedError,
    VigieClientError,
    error_from_rpc,
)

__all__ = ["RetryEvent", "RetryPolicy", "call_with_retries", "is_transient", "retry_delay"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter.

    The n-th retry (n from 1) waits a uniform random time in ``[d/2, d]`` where
    ``d = min(max_backoff_s, initial_backoff_s * multiplier ** (n - 1))`` ("equal jitter":
    spread, never zero), and at least the server's ``RetryInfo`` delay when it sent one.

    Attributes:
        max_attempts: Attempts in all, the first included (1 disables retries).
        initial_backoff_s: Backoff before the first retry (upper bound).
        max_backoff_s: Cap of any single backoff.
        multiplier: Growth per retry.
    """

    max_attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff_s < 0 or self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("need 0 <= initial_backoff_s <= max_backoff_s")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """The jittered backoff before retry number ``retry`` (1-based)."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """What the client tells an observer before it retries."""

    method: str
    attempt: int
    error: VigieClientError
    delay_s: float
    request_id: str


def is_transient(error: VigieClientError, *, idempotent: bool) -> bool:
    """Whether re-sending the same call may succeed (module docstring, cases 1-3)."""
    code = error.code
    if code == grpc.StatusCode.UNAVAILABLE:
        return True
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return idempotent
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and isinstance(error, ResourceExhaustedError):
        return error.retry_after is not None
    return False


def retry_delay(
    error: VigieClientError,
    retry: int,
    policy: RetryPolicy,
    *,
    idempotent: bool,
    deadline_passed: bool,
) -> float | None:
    """How long to wait before retrying after ``error``, or ``None`` to give up at once.

    Args:
        error: The typed error of the failed attempt.
        retry: The number of the retry being considered (1 for the first retry).
        policy: The policy.
        idempotent: Whether re-sending the call can change nothing (reads; writes with a
            request id).
        deadline_passed: Whether the overall deadline has passed.
    """
    if retry >= policy.max_attempts or deadline_passed:
        return None
    if not is_transient(error, idempotent=idempotent):
        return None
    backoff = policy.backoff(retry)
    after = error.retry_after if isinstance(error, ResourceExhaustedError) else None
    return backoff if after is None else max(after, backoff)


async def call_with_retries(
    attempt: Callable[[float | None], Awaitable[T]],
    *,
    method: str,
    policy: RetryPolicy,
    timeout: float | None,
    attempt_timeout: float | None,
    idempotent: bool = True,
    request_id: str = "",
    on_retry: Callable[[RetryEvent], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``attempt(per_attempt_timeout)`` until it succeeds or fails for good.

    Steps:
    1. compute the attempt's deadline: the remaining overall time, capped by ``attempt_timeout``;
    2. run it; convert a ``grpc.RpcError`` into the typed error (keeping ``request_id``);
    3. ask :func:`retry_delay`; give up if ``None`` or if the wait would pass the deadline;
    4. tell ``on_retry``, wait, go to 1 -- the caller's ``attempt`` reuses the same request.

    Raises:
        VigieClientError: The typed error of the last attempt.
    """
    deadline = None if timeout is None else clock() + timeout
    retry = 0
    while True:
        remaining = None if deadline is None else deadline - clock()  # step 1
        if remaining is not None and remaining <= 0:
            raise DeadlineExceededError(
                f"{method}: deadline of {timeout} s passed", request_id=request_id
            )
        per_attempt = remaining
        if attempt_timeout is not None:
            per_attempt = attempt_timeout if remaining is None else min(remaining, attempt_timeout)
        try:  # step 2
            return await attempt(per_attempt)
        except grpc.RpcError as e:
            error = error_from_rpc(e, request_id=request_id)
            cause: BaseException = e
        retry += 1  # step 3
        passed = deadline is not None and clock() >= deadline
        delay = retry_delay(error, retry, policy, idempotent=idempotent, deadline_passed=passed)
        if delay is None or (deadline is not None and clock() + delay >= deadline):
            raise error from cause
        if on_retry is not None:  # step 4
            on_retry(RetryEvent(method, retry, error, delay, request_id))
        await asyncio.sleep(delay)
