"""Deployment values for deploy.sh: settings it needs as shell lines, and the functions' env-vars file."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from shared.bootstrap import load_settings
from shared.config import Settings
from shared.domain.steps import dependents_of, steps
from shared.handlers.provisioning import applied_at_onboarding, published_at_onboarding

KEY_RING = "onboarding"
PURGE_ROLE_ID = "onboardingDatasetPurger"  # the custom role deploy.sh creates (PURGE_ROLE_ID there)
CRYPTO_KEY = "api-keys"
ROTATION_DAYS = 90
# Pub/Sub accepts 5 to 100 delivery attempts before dead-lettering.
PUBSUB_MIN_ATTEMPTS, PUBSUB_MAX_ATTEMPTS = 5, 100


def kms_key_name(project: str, region: str) -> str:
    """Full resource name of the key that encrypts API keys."""
    return f"projects/{project}/locations/{region}/keyRings/{KEY_RING}/cryptoKeys/{CRYPTO_KEY}"


def function_env(
    settings: Settings,
    project: str,
    region: str,
    bigquery_location: str,
    front_door: dict[str, str] | None = None,
) -> dict[str, str]:
    """Every deployed function's environment: the GCP backend in production mode, and the front door's values."""
    return {
        "ONBOARDING_BACKEND": "gcp",
        "ONBOARDING_ENV": "production",
        "ONBOARDING_DATA_DIR": "/tmp/onboarding",  # the only writable place on Cloud Functions
        "ONBOARDING_CENTRAL_DATASET": settings.central_dataset,
        "GOOGLE_CLOUD_PROJECT": project,
        "ONBOARDING_GCP_REGION": region,
        "ONBOARDING_BIGQUERY_LOCATION": bigquery_location,
        "ONBOARDING_KMS_KEY_NAME": kms_key_name(project, region),
        **(front_door or {}),
    }


def front_door_env(public_base_url: str, audiences: list[str], operators: list[str]) -> dict[str, str]:
    """Operators by Google ID token (audiences, members) and the gateway's URL for absolute links."""
    if not public_base_url:
        return {}
    return {
        "ONBOARDING_OPERATOR_AUTH": "google",
        "ONBOARDING_OPERATOR_AUDIENCES": ",".join(audiences),
        "ONBOARDING_OPERATORS": ",".join(operators),
        "ONBOARDING_PUBLIC_BASE_URL": public_base_url,
    }


def shell_values(settings: Settings, project: str, region: str, bigquery_location: str) -> list[str]:
    """One value per line, in the order deploy.sh reads them."""
    attempts = min(max(settings.event_bus.max_attempts, PUBSUB_MIN_ATTEMPTS), PUBSUB_MAX_ATTEMPTS)
    next_rotation = (datetime.now(UTC) + timedelta(days=ROTATION_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    topics = settings.topics
    return [
        settings.central_dataset,
        bigquery_location,
        str(attempts),
        KEY_RING,
        CRYPTO_KEY,
        f"{ROTATION_DAYS}d",
        next_rotation,
        topics.validations,
        topics.billing,
        topics.lifecycle,
        topics.pipeline_runs,
        topics.pipeline_run_results,
        *step_lines(settings, purge_role=f"projects/{project}/roles/{PURGE_ROLE_ID}"),
    ]


def step_lines(settings: Settings, *, purge_role: str) -> list[str]:
    """One line per declared step: name, topic, how it starts, the topics it releases (or -), its roles.

    How it starts: `root` when onboarding publishes it, `applied` when onboarding's own commit
    completes it (a record-only step: nothing is ever published to it, so it releases nothing
    either, and nobody republishes it), `-` when the last of its prerequisites releases it.
    """
    topics = settings.topics
    applied, published = applied_at_onboarding(), published_at_onboarding()
    lines = []
    for step in steps():
        start = "applied" if step.name in applied else "root" if step.name in published else "-"
        releases = () if step.name in applied else dependents_of(step.name)
        released = ",".join(topics.step(name) for name in releases) or "-"
        grants = " ".join(grant.format(lifecycle=topics.lifecycle, billing=topics.billing, purge_role=purge_role) for grant in step.grants)
        lines.append(f"{step.name} {topics.step(step.name)} {start} {released} {grants}".rstrip())
    return lines


def main() -> None:
    """Write the env-vars file and print the values deploy.sh reads."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--bigquery-location", default="")
    parser.add_argument("--env-file", type=Path, required=True)
    parser.add_argument("--public-base-url", default="", help="the API gateway's URL (once it exists)")
    parser.add_argument("--operator-audience", action="append", default=[], help="an accepted audience of operators' ID tokens")
    parser.add_argument("--operator", action="append", default=[], help="user:EMAIL or serviceAccount:EMAIL")
    args = parser.parse_args()
    settings = load_settings()
    location = args.bigquery_location or args.region
    args.env_file.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated by deploy.sh from configs/settings/defaults.yml; every function gets these variables.\n"
    front_door = front_door_env(args.public_base_url, args.operator_audience, args.operator)
    env = function_env(settings, args.project, args.region, location, front_door)
    args.env_file.write_text(header + yaml.safe_dump(env, default_style='"', sort_keys=False))
    print("\n".join(shell_values(settings, args.project, args.region, location)))


if __name__ == "__main__":
    main()
