"""`onboarding`: the operators' command line, a thin client of the onboarding HTTP API."""
