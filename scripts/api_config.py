"""API Gateway's config (OpenAPI 2.0) generated from the route table; deploy.sh runs it.

    python -m scripts.api_config --project P --region R --audience AUD [--audience AUD2] --output FILE

Each route goes to the URL of the function that serves it,
https://REGION-PROJECT.cloudfunctions.net/FUNCTION (the stable URL every Cloud Run function
keeps: https://cloud.google.com/functions/docs/calling/http), with the whole request path
appended, so the function's router sees the path it routes by.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from functions.routes import HTTP_FUNCTIONS, ROUTES
from shared.entrypoints.openapi import api_gateway_config


def function_url(project: str, region: str, function: str) -> str:
    """The HTTPS URL of a deployed function."""
    return f"https://{region}-{project}.cloudfunctions.net/{function}"


def gateway_config(project: str, region: str, audiences: list[str]) -> dict[str, Any]:
    """The gateway config for this project's functions."""
    backends = {function: function_url(project, region, function) for function in HTTP_FUNCTIONS}
    return api_gateway_config(ROUTES, backends, audiences)


def main() -> None:
    """Write the config to --output and print the functions it routes to, one a line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--audience", action="append", required=True, help="an accepted audience of operators' ID tokens")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    config = gateway_config(args.project, args.region, args.audience)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for function in HTTP_FUNCTIONS:
        print(function)


if __name__ == "__main__":
    main()
