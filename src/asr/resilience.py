"""Retry policy and circuit breaker for calls to one Riva endpoint.

The policy is data (:class:`~asr.settings.RetrySettings`) plus one decision
(:func:`should_retry`); the waiting is tenacity's jittered exponential backoff. The breaker
is pybreaker's (:class:`~asr.settings.BreakerSettings`), counting only failures of the
endpoint: a request the server rejects as invalid, or refuses because it is full, says
nothing against the server's health. A health check that finds the
server SERVING again lets a trial call through at once (:func:`health_says_serving`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pybreaker
import tenacity

from .errors import (
    CircuitOpenError,
    DeadlineExceededError,
    ResourceExhaustedError,
    TransientError,
    UnavailableError,
)
from .settings import BreakerSettings, RetrySettings

__all__ = [
    "breaker_guard",
    "health_says_serving",
    "new_breaker",
    "retrying",
    "should_retry",
]

logger = logging.getLogger("asr.client")

# Errors after which the same request may be sent again. StreamInterruptedError is
# transient but excluded: its audio was partly recognised already. CircuitOpenError is
# excluded so that an open breaker fails fast instead of waiting out the backoff.
_RETRYABLE = (UnavailableError, DeadlineExceededError, ResourceExhaustedError)


def should_retry(exc: BaseException) -> bool:
    """Whether a failed call may be attempted again with the same request."""
    return isinstance(exc, _RETRYABLE)


def retrying(
    policy: RetrySettings, *, on_retry: Callable[[], None] | None = None
) -> tenacity.AsyncRetrying:
    """A tenacity controller applying ``policy`` and :func:`should_retry`.

    The last error is re-raised as is once attempts run out.

    Args:
        policy: Attempts and backoff.
        on_retry: Called before each wait for a repeated attempt (a metrics hook).
    """

    def before_sleep(state: tenacity.RetryCallState) -> None:
        _log_retry(state)
        if on_retry is not None:
            on_retry()

    return tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=tenacity.wait_random_exponential(
            multiplier=policy.initial_backoff, max=policy.max_backoff
        ),
        retry=tenacity.retry_if_exception(should_retry),
        before_sleep=before_sleep,
        reraise=True,
    )


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    # INFO, not WARNING: retrying is the policy working; riva_retries_total counts them.
    logger.info("attempt %d failed (%s); retrying in %.2fs", state.attempt_number, exc, wait)


def _not_a_failure(exc: BaseException) -> bool:
    # RESOURCE_EXHAUSTED is back-pressure from a server that answered: it is full, not
    # down. Counting it would open the breaker when load peaks and lock every caller out
    # of a server that is about to have room again.
    return not isinstance(exc, TransientError) or isinstance(exc, ResourceExhaustedError)


def new_breaker(name: str, policy: BreakerSettings) -> pybreaker.CircuitBreaker:
    """A circuit breaker that opens after ``policy.fail_max`` consecutive failures of the
    endpoint ``name``.

    Failures are transient errors other than RESOURCE_EXHAUSTED; anything else the server
    answers counts as a sign of life and resets the count.
    """
    return pybreaker.CircuitBreaker(
        fail_max=policy.fail_max,
        reset_timeout=policy.reset_timeout,
        exclude=[_not_a_failure],
        name=name,
        # Let the call's own error through on the failure that trips the breaker; only
        # calls refused while it is open get CircuitOpenError.
        throw_new_error_on_trip=False,
    )


@contextmanager
def breaker_guard(breaker: pybreaker.CircuitBreaker) -> Iterator[None]:
    """Run the block under ``breaker``; raise :class:`CircuitOpenError` while it is open."""
    try:
        with breaker.calling():
            yield
    except pybreaker.CircuitBreakerError as exc:
        raise CircuitOpenError(
            f"circuit breaker for {breaker.name} is open after {breaker.fail_counter} "
            f"consecutive failures; not calling for up to {breaker.reset_timeout:g}s"
        ) from exc


def health_says_serving(breaker: pybreaker.CircuitBreaker) -> None:
    """The endpoint's health check said SERVING: an open breaker lets the next call try.

    Without this, callers would be refused until ``reset_timeout`` ran out although the
    server is back (a readiness probe would say ready while every session failed).
    """
    if breaker.current_state == pybreaker.STATE_OPEN:
        logger.info("health check of %s says SERVING: half-opening its breaker", breaker.name)
        breaker.half_open()
