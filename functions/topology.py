"""Which function each topic triggers: one table for the local platform and `make emulate`.

Step functions come from the step declarations (`shared.domain.steps`); deploy.sh reads the
same declarations through `scripts.deploy_config`, and its test checks every entry point is deployed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.config import Topics
from shared.domain.steps import steps


@dataclass(frozen=True)
class EventTrigger:
    """A CloudEvent function on a topic, and the function that handles the topic's dead letters."""

    function: str
    topic_setting: str
    dead_letter_function: str | None
    step: str | None = None

    def topic(self, topics: Topics) -> str:
        """The topic name under these settings."""
        if self.step is not None:
            return topics.step(self.step)
        name: str = getattr(topics, self.topic_setting)
        return name


def event_triggers() -> tuple[EventTrigger, ...]:
    """Every event function with its topic: one per declared step, then billing, then the executor's reports."""
    step_triggers = tuple(EventTrigger(step.function, "steps", "step_dead_letter", step=step.name) for step in steps())
    billing = EventTrigger("billing_event", "billing", "billing_dead_letter")
    results = EventTrigger("pipeline_run_result", "pipeline_run_results", "pipeline_result_dead_letter")
    return (*step_triggers, billing, results)


EVENT_TRIGGERS: tuple[EventTrigger, ...] = event_triggers()


def entry_point(name: str) -> Callable[..., Any]:
    """The function deployed under `name` (main.py is the source root)."""
    function: Callable[..., Any] = getattr(importlib.import_module("main"), name)
    return function


def step_table() -> str:
    """docs/architecture.md's table of steps, from their declarations (a test keeps the doc in step)."""
    rows = ["| step | topic | after | what it does |", "|---|---|---|---|"]
    for step in steps():
        after = ", ".join(step.prerequisites) or "onboarding"
        rows.append(f"| {step.name} | `{step.topic}` | {after} | {step.summary} |")
    return "\n".join(rows)
