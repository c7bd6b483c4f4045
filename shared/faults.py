"""Fault injection, configured only by settings (`ONBOARDING_FAULTS`, `ONBOARDING_FAULTS_SEED`).

The spec is a comma-separated list of `name=value`, for example
`duplicate=0.5,fail_before=0.1,fail_after=0.1,delay_ms=0-300,reorder=1`:

- bus faults (applied by the embedded event bus to every delivery):
  `duplicate` (probability of a second, concurrent delivery of the same message),
  `fail_before` (the handler is not run and the delivery is nacked),
  `fail_after` (the handler ran but its ack is lost, so the message comes again),
  `delay_ms` (a random pause before the handler, `lo-hi` or one number),
  `reorder` (probability of delivering a random ready message instead of the oldest);
- backend faults (applied around every adapter call by `shared.adapters.guarded`):
  `backend_fail` (probability a call is refused with BackendUnavailable before it runs),
  `backend_delay_ms` (a random pause before a call),
  `backend_hang` (probability a call stalls past its deadline, then fails as a timeout),
  `outage` (ports that refuse every call, `warehouse` or `warehouse.create_dataset`,
  several joined by `+`).

Faults are off by default and refused in production.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.config import Settings

PORTS = ("documents", "warehouse", "keys", "bus")


class FaultSpecError(ValueError):
    """ONBOARDING_FAULTS does not parse."""


class FaultPlan(BaseModel):
    """Which faults to inject and how often; the zero plan injects nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duplicate: float = Field(default=0.0, ge=0, le=1)
    fail_before: float = Field(default=0.0, ge=0, le=1)
    fail_after: float = Field(default=0.0, ge=0, le=1)
    delay_ms: tuple[int, int] = (0, 0)
    reorder: float = Field(default=0.0, ge=0, le=1)
    backend_fail: float = Field(default=0.0, ge=0, le=1)
    backend_delay_ms: tuple[int, int] = (0, 0)
    backend_hang: float = Field(default=0.0, ge=0, le=1)
    outage: tuple[str, ...] = ()

    @field_validator("delay_ms", "backend_delay_ms", mode="before")
    @classmethod
    def _range(cls, value: object) -> object:
        if isinstance(value, str):
            low, _, high = value.partition("-")
            try:
                return (int(low), int(high or low))
            except ValueError:
                raise ValueError("a delay is milliseconds, `lo-hi` or one number") from None
        return value

    @field_validator("delay_ms", "backend_delay_ms")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= value[0] <= value[1] <= 600_000:
            raise ValueError("a delay range is 0 <= lo <= hi <= 600000 ms")
        return value

    @field_validator("outage", mode="before")
    @classmethod
    def _targets(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part for part in value.split("+") if part)
        if isinstance(value, tuple | list):
            for target in value:
                if str(target).split(".", 1)[0] not in PORTS:
                    raise ValueError(f"outage target {target!r} is not one of {', '.join(PORTS)} (optionally .method)")
        return value


def parse_faults(spec: str) -> FaultPlan:
    """The plan for `spec`; FaultSpecError names what is wrong."""
    fields: dict[str, str] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise FaultSpecError(f"fault {item!r} is not name=value")
        fields[name.strip()] = value.strip()
    try:
        return FaultPlan.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in error.errors(include_url=False))
        raise FaultSpecError(f"ONBOARDING_FAULTS is not valid: {problems}") from None


@dataclass(frozen=True)
class DeliveryFaults:
    """What happens to one delivery."""

    duplicate: bool = False
    fail_before: bool = False
    fail_after: bool = False
    delay_seconds: float = 0.0


NO_DELIVERY_FAULTS = DeliveryFaults()


class FaultInjector:
    """Draws faults from one seeded random source and counts what it injected.

    The seed makes the sequence of decisions repeatable; which delivery gets which
    decision still depends on thread scheduling.
    """

    def __init__(self, plan: FaultPlan, seed: int | None = None) -> None:
        self.plan = plan
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._outages: set[str] = set(plan.outage)
        self._armed: list[tuple[str, int]] = []
        self._pauses: list[tuple[str, list[int], threading.Event, threading.Event]] = []
        self.counts: Counter[str] = Counter()

    # --- shared -------------------------------------------------------------------------
    def _chance(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            return self._random.random() < probability

    def _pause(self, bounds: tuple[int, int]) -> float:
        low, high = bounds
        if high <= 0:
            return 0.0
        with self._lock:
            return self._random.uniform(low, high) / 1000

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a named counter."""
        with self._lock:
            self.counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        """Every counter, as a plain dict."""
        with self._lock:
            return dict(self.counts)

    # --- bus ----------------------------------------------------------------------------
    def delivery(self) -> DeliveryFaults:
        """The faults of one delivery of the embedded bus."""
        plan = self.plan
        faults = DeliveryFaults(
            duplicate=self._chance(plan.duplicate),
            fail_before=self._chance(plan.fail_before),
            fail_after=self._chance(plan.fail_after),
            delay_seconds=self._pause(plan.delay_ms),
        )
        return faults

    def reorder(self) -> bool:
        """Whether the next claim takes a random ready message instead of the oldest."""
        return self._chance(self.plan.reorder)

    # --- backends -----------------------------------------------------------------------
    def backend_call(self, port: str, method: str) -> tuple[float, str | None]:
        """(pause before the call in seconds, why it must fail or None) for one adapter call."""
        target = f"{port}.{method}"
        self._maybe_pause(port, target)
        with self._lock:
            if port in self._outages or target in self._outages:
                return 0.0, f"injected outage of {port}"
            for index, (armed, remaining) in enumerate(self._armed):
                if armed in (port, target):
                    if remaining <= 1:
                        del self._armed[index]
                        return 0.0, f"injected failure of {target}"
                    self._armed[index] = (armed, remaining - 1)
                    break
        if self._chance(self.plan.backend_hang):
            return float("inf"), "injected hang"
        if self._chance(self.plan.backend_fail):
            return 0.0, f"injected failure of {target}"
        return self._pause(self.plan.backend_delay_ms), None

    def _maybe_pause(self, port: str, target: str) -> None:
        with self._lock:
            hit = None
            for index, (armed, remaining, reached, resume) in enumerate(self._pauses):
                if armed in (port, target):
                    remaining[0] -= 1
                    if remaining[0] <= 0:
                        hit = (reached, resume)
                        del self._pauses[index]
                    break
        if hit is not None:
            reached, resume = hit
            reached.set()
            resume.wait(30)

    def pause_call(self, target: str, after: int = 0) -> tuple[threading.Event, threading.Event]:
        """Hold one future call to `target` (skipping `after` calls) until the second event is set.

        The first event is set when the call is reached. Tests use it to run another
        delivery in the middle of this one, at a chosen point.
        """
        reached, resume = threading.Event(), threading.Event()
        with self._lock:
            self._pauses.append((target, [after + 1], reached, resume))
        return reached, resume

    def clear(self) -> None:
        """Drop every armed failure and pause (outages stay)."""
        with self._lock:
            self._armed.clear()
            for _, _, _, resume in self._pauses:
                resume.set()
            self._pauses.clear()

    def start_outage(self, target: str) -> None:
        """Every call to `target` (a port, or port.method) fails until `end_outage`."""
        with self._lock:
            self._outages.add(target)

    def end_outage(self, target: str) -> None:
        """The outage of `target` is over."""
        with self._lock:
            self._outages.discard(target)

    def fail_call(self, target: str, after: int = 0) -> None:
        """Fail one future call to `target` (port or port.method), skipping `after` calls first."""
        with self._lock:
            self._armed.append((target, after + 1))


def injector_for(settings: Settings) -> FaultInjector | None:
    """The injector the settings ask for; None when ONBOARDING_FAULTS is empty. Refused in production.

    Any non-empty spec gives an injector, even one with every rate at zero (`delay_ms=0`):
    tests use it to start and end outages at run time.
    """
    if not settings.faults.strip():
        return None
    if settings.production:
        raise RuntimeError("fault injection (ONBOARDING_FAULTS) is refused in production")
    return FaultInjector(parse_faults(settings.faults), settings.faults_seed)
