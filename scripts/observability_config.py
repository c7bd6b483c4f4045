"""The log-based metrics and the dead-letter alert deploy.sh creates: one JSON file each, from the lines the code logs.

Each function instance keeps its own Prometheus counters, so on Google Cloud the figures come
from the logs instead: a log-based metric counts (or takes a distribution of a field of) the
JSON lines every instance writes, across instances. Their filters name the very messages the
code logs, imported from it.
https://cloud.google.com/logging/docs/logs-based-metrics/distribution-metrics
https://cloud.google.com/logging/docs/reference/v2/rest/v2/projects.metrics#LogMetric
https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies

`python -m scripts.observability_config DIR` writes DIR/metrics/<name>.json and DIR/alert-policy.json,
then prints one line per metric name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shared.handlers.reconcile import BACKLOG_LINE

# Cloud Run functions (2nd gen) write to the cloud_run_revision resource.
RESOURCE = 'resource.type="cloud_run_revision"'
BACKLOG_METRIC = "onboarding_dead_letter_backlog"
ALERT_DISPLAY_NAME = "Onboarding: open dead letters"
STEP_DELIVERY_LINE = "step delivery handled"  # shared/metrics.py timed_delivery
STEP_FAILED_LINE = "step failed for good"  # shared/handlers/dead_letters.py
BILLING_LINE = "billing event handled"  # shared/handlers/billing.py


def _line(message: str) -> str:
    return f'{RESOURCE} AND jsonPayload.message="{message}"'


def _label(key: str, description: str) -> dict[str, str]:
    return {"key": key, "valueType": "STRING", "description": description}


def log_metrics() -> dict[str, dict[str, Any]]:
    """Every log-based metric by name, as LogMetric resources."""
    return {
        BACKLOG_METRIC: {
            "name": BACKLOG_METRIC,
            "description": "Open dead letters, as the reconciler counts them on each pass (every 5 minutes)",
            "filter": _line(BACKLOG_LINE),
            "valueExtractor": "EXTRACT(jsonPayload.open_dead_letters)",
            "metricDescriptor": {"metricKind": "DELTA", "valueType": "DISTRIBUTION", "unit": "1"},
            "bucketOptions": {"explicitBuckets": {"bounds": [0.5, 1, 5, 10, 50, 100, 1000]}},
        },
        "onboarding_step_duration": {
            "name": "onboarding_step_duration",
            "description": "Seconds to handle one delivery of a step command, by step and outcome",
            "filter": _line(STEP_DELIVERY_LINE),
            "valueExtractor": "EXTRACT(jsonPayload.duration_seconds)",
            "labelExtractors": {"step": "EXTRACT(jsonPayload.step)", "outcome": "EXTRACT(jsonPayload.outcome)"},
            "metricDescriptor": {
                "metricKind": "DELTA",
                "valueType": "DISTRIBUTION",
                "unit": "s",
                "labels": [_label("step", "provisioning step"), _label("outcome", "done, duplicate, stale, dead_lettered, error")],
            },
            "bucketOptions": {"exponentialBuckets": {"numFiniteBuckets": 16, "growthFactor": 2, "scale": 0.005}},
        },
        "onboarding_tenants_failed": {
            "name": "onboarding_tenants_failed",
            "description": "Steps given up on (dead-lettered): each fails its tenant until an operator retries",
            "filter": _line(STEP_FAILED_LINE),
            "labelExtractors": {"step": "EXTRACT(jsonPayload.step)"},
            "metricDescriptor": {"metricKind": "DELTA", "valueType": "INT64", "unit": "1", "labels": [_label("step", "provisioning step")]},
        },
        "onboarding_billing_events": {
            "name": "onboarding_billing_events",
            "description": "Billing events handled, by outcome",
            "filter": _line(BILLING_LINE),
            "labelExtractors": {"outcome": "EXTRACT(jsonPayload.outcome)"},
            "metricDescriptor": {
                "metricKind": "DELTA",
                "valueType": "INT64",
                "unit": "1",
                "labels": [_label("outcome", "applied, ignored, refused, duplicate")],
            },
        },
    }


def alert_policy() -> dict[str, Any]:
    """An alert whenever the reconciler saw an open dead letter in the last 10 minutes (two passes)."""
    return {
        "displayName": ALERT_DISPLAY_NAME,
        "combiner": "OR",
        "documentation": {
            "mimeType": "text/markdown",
            "content": "A provisioning step or billing event was given up on. `onboarding dead-letters list` (or "
            "GET /api/v1/dead-letters?status=OPEN) shows why; retry the tenant once the cause is fixed.",
        },
        "conditions": [
            {
                "displayName": "open dead letters > 0",
                "conditionThreshold": {
                    "filter": f'metric.type="logging.googleapis.com/user/{BACKLOG_METRIC}" AND {RESOURCE}',
                    "aggregations": [
                        {
                            "alignmentPeriod": "600s",
                            "perSeriesAligner": "ALIGN_PERCENTILE_99",
                            "crossSeriesReducer": "REDUCE_MAX",
                        }
                    ],
                    "comparison": "COMPARISON_GT",
                    "thresholdValue": 0,
                    "duration": "0s",
                    "trigger": {"count": 1},
                },
            }
        ],
    }


def write(directory: Path) -> list[str]:
    """Write every metric's file and the policy's file under `directory`; returns the metric names."""
    metrics_dir = directory / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    metrics = log_metrics()
    for name, metric in metrics.items():
        (metrics_dir / f"{name}.json").write_text(json.dumps(metric, indent=2) + "\n")
    (directory / "alert-policy.json").write_text(json.dumps(alert_policy(), indent=2) + "\n")
    return list(metrics)


def main() -> None:
    """Write the files; print the metric names, one a line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    for name in write(parser.parse_args().directory):
        print(name)


if __name__ == "__main__":
    main()
