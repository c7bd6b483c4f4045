"""`make iam-check`: every function is granted exactly what its handlers use, and any single missing grant is caught."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterator

import pytest

from scripts.iam_check import compare, condition_holds, dry_run_plan, load_roles, parse_plan, plan_commands, record, run_check
from shared.bootstrap import load_settings
from shared.ports.permissions import Access

CENTRAL = f"projects/demo-project/datasets/{load_settings().central_dataset}"


@pytest.fixture(scope="module")
def usage() -> Iterator[dict[str, set[Access]]]:
    logging.disable(logging.CRITICAL)
    try:
        yield record()
    finally:
        logging.disable(logging.NOTSET)


@pytest.fixture(scope="module")
def plan_text() -> str:
    return dry_run_plan()


def test_the_deploy_plan_grants_each_function_exactly_what_it_uses(plan_text: str, usage: dict[str, set[Access]]) -> None:
    report = run_check(plan_text, usage)
    assert not report.failed, report.render()
    # Every deployed function but healthz does something on Google Cloud, and was seen doing it.
    assert {function for function, found in usage.items() if found} == set(report.plan.accounts) - {"healthz"}


def test_removing_any_single_grant_fails_naming_function_permission_and_resource(plan_text: str, usage: dict[str, set[Access]]) -> None:
    # Given the plan's role bindings on the functions' accounts
    plan = parse_plan(plan_commands(plan_text))
    bindings = plan.bindings
    assert len(bindings) > 40
    roles = load_roles()
    for binding in bindings:
        # When one printed binding is left out of the plan
        kept = [
            line for line in plan_text.splitlines() if not (line.startswith("+ ") and shlex.split(line[2:]) == shlex.split(binding.line))
        ]
        assert len(kept) == len(plan_text.splitlines()) - 1, binding.line
        without = "\n".join(kept)
        report = run_check(without, usage)
        # Then the check fails, naming that function and a permission of that role on a resource in its scope
        assert report.failed, binding.line
        permissions = plan.custom_roles.get(binding.role) or roles[binding.role]
        missing = [finding for finding in report.findings if finding.kind == "missing"]
        assert missing and {finding.function for finding in missing} == {binding.function}, (binding.line, missing)
        assert all(finding.detail.split(" on ")[0] in permissions for finding in missing), (binding.line, missing)
        assert f"MISSING: {binding.function}: " in report.render()


def test_a_grant_no_handler_uses_fails_as_unused(plan_text: str, usage: dict[str, set[Access]]) -> None:
    extra = (
        "+ gcloud pubsub topics add-iam-policy-binding tenant-lifecycle "
        "--member=serviceAccount:onb-tenant-status@demo-project.iam.gserviceaccount.com "
        "--role=roles/pubsub.publisher --project=demo-project --format=none"
    )
    report = run_check(plan_text + extra + "\n", usage)
    assert report.failed
    assert (
        "UNUSED: tenant_status: roles/pubsub.publisher on projects/demo-project/topics/tenant-lifecycle covers nothing it uses"
        in report.render()
    )


def test_a_custom_role_permission_nobody_uses_fails(plan_text: str, usage: dict[str, set[Access]]) -> None:
    widened = plan_text.replace(
        "--permissions=bigquery.datasets.delete,bigquery.tables.delete",
        "--permissions=bigquery.datasets.delete,bigquery.tables.delete,bigquery.tables.list",
    )
    assert widened != plan_text
    report = run_check(widened, usage)
    assert report.failed
    assert "onboardingDatasetPurger: bigquery.tables.list is used by none of its holders" in report.render()


def test_a_role_missing_from_the_table_is_an_error_not_a_pass(plan_text: str, usage: dict[str, set[Access]]) -> None:
    plan = parse_plan(plan_commands(plan_text.replace("--role=roles/datastore.viewer", "--role=roles/datastore.owner")))
    with pytest.raises(KeyError, match=r"roles/datastore.owner"):
        compare(plan, usage, load_roles(), load_settings().central_dataset)


@pytest.mark.parametrize(
    ("resource", "central_only", "not_central"),
    [
        (CENTRAL, True, False),
        (f"{CENTRAL}/tables/tenant_profiles", True, False),
        ("projects/demo-project/datasets/customer_123", False, True),
        ("projects/demo-project/datasets/customer_123/tables/onboarding_validation_test", False, True),
        (f"{CENTRAL}_shadow", False, True),
    ],
)
def test_the_iam_conditions_deploy_sh_writes_scope_bindings_by_resource_name(resource: str, central_only: bool, not_central: bool) -> None:
    assert condition_holds(f'resource.name == "{CENTRAL}" || resource.name.startsWith("{CENTRAL}/")', resource) is central_only
    assert condition_holds(f'resource.name != "{CENTRAL}" && !resource.name.startsWith("{CENTRAL}/")', resource) is not_central


def test_a_condition_outside_the_understood_subset_is_refused() -> None:
    with pytest.raises(ValueError, match="not understood"):
        condition_holds('resource.type == "bigquery.googleapis.com/Dataset"', CENTRAL)
