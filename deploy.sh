#!/usr/bin/env bash
# Deploys the onboarding control plane to Google Cloud.
set -euo pipefail
echo "deploy.sh: deployment to Google Cloud is not implemented yet; run locally with 'make run'." >&2
exit 1
