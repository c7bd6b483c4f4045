"""Writes schemas/json/<Model>.json and schemas/pubsub/<Model>.proto from the pydantic models (`make schemas`); never edit by hand."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas import events, http

JSON_DIR = Path(__file__).parent / "json"
PUBSUB_DIR = Path(__file__).parent / "pubsub"
MODELS: list[type[BaseModel]] = [
    http.TenantRequest,
    http.OnboardRequest,
    http.DryRunResponse,
    http.OnboardAccepted,
    http.OnboardCompleted,
    http.TenantStatusResponse,
    http.TenantOverview,
    http.ErrorResponse,
    http.HealthResponse,
    events.ValidationRecorded,
    events.StepRequested,
    http.RetryAccepted,
    http.DeadLetterEntry,
    http.DeadLetterList,
    events.BillingEvent,
    events.TenantLifecycleEvent,
    http.BillingEventAccepted,
    http.TenantEventsResponse,
    http.PurgeResponse,
    http.PipelineRunRequest,
    http.PipelineRunAdmitted,
    http.PipelineRunStatus,
    events.PipelineRunRequested,
    events.PipelineRunResult,
    http.TenantList,
    http.OperatorActionRequest,
    http.OperatorActionResponse,
    http.ApiKeyRotateRequest,
    http.ApiKeyRotated,
    http.ApiKeyRevokeRequest,
    http.ApiKeysRevoked,
]


def rendered() -> dict[str, str]:
    """File name to JSON Schema text for every contract."""
    return {f"{model.__name__}.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n" for model in MODELS}


def main() -> None:
    """Rewrite the JSON Schema files, removing any for models that no longer exist."""
    JSON_DIR.mkdir(exist_ok=True)
    files = rendered()
    for stale in JSON_DIR.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (JSON_DIR / name).write_text(text)
    print(f"wrote {len(files)} schemas to {JSON_DIR}")
    from schemas import pubsub_schema  # protobuf is needed only here

    PUBSUB_DIR.mkdir(exist_ok=True)
    for name, text in pubsub_schema.rendered().items():
        (PUBSUB_DIR / name).write_text(text)
    print(f"wrote {len(pubsub_schema.TOPIC_MODELS)} Pub/Sub schemas to {PUBSUB_DIR}")


if __name__ == "__main__":
    main()
