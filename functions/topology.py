"""Which function each topic triggers: one table for the local platform and `make emulate`.

(deploy.sh holds the same wiring for Google Cloud; its test checks every entry point is deployed.)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.config import Topics


@dataclass(frozen=True)
class EventTrigger:
    """A CloudEvent function on a topic, and the function that handles the topic's dead letters."""

    function: str
    topic_setting: str
    dead_letter_function: str | None

    def topic(self, topics: Topics) -> str:
        """The topic name under these settings."""
        name: str = getattr(topics, self.topic_setting)
        return name


EVENT_TRIGGERS: tuple[EventTrigger, ...] = (
    EventTrigger("step_subscription", "subscription", "step_dead_letter"),
    EventTrigger("step_quota", "quota", "step_dead_letter"),
    EventTrigger("step_dataset", "dataset", "step_dead_letter"),
    EventTrigger("step_view", "view", "step_dead_letter"),
    EventTrigger("billing_event", "billing", "billing_dead_letter"),
)


def entry_point(name: str) -> Callable[..., Any]:
    """The function deployed under `name` (main.py is the source root)."""
    function: Callable[..., Any] = getattr(importlib.import_module("main"), name)
    return function
