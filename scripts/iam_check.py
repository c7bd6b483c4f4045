"""`make iam-check`: what each function uses against what `deploy.sh --dry-run` grants its service account.

Used: the permissions recorded while every deployed function's handlers run through every
path (scripts/iam_usage.py). Granted: the plan's role bindings on each function's account,
expanded through scripts/iam_roles.yml (predefined roles) and the plan's own
`gcloud iam roles create` (custom roles), each honouring its scope: a topic binding covers
that topic, a key binding that key, a project binding everything, unless its IAM condition
(evaluated here on the resource name) says otherwise.

Exits 1 when a function uses a permission it is not granted, when a binding covers nothing
the function uses, or when a custom role holds a permission none of its holders uses.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from shared.bootstrap import load_settings
from shared.ports.permissions import Access, Resource

ROOT = Path(__file__).resolve().parents[1]
ROLES_FILE = Path(__file__).with_name("iam_roles.yml")
PROJECT, REGION = "demo-project", "europe-west1"


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Binding:
    """One role granted to one function's account, on a scope, under an optional IAM condition."""

    function: str
    role: str
    scope: str  # "project", or the full name of the topic or key the binding is on
    condition: str | None
    title: str
    line: str

    def describe(self) -> str:
        """The binding as the report shows it."""
        where = self.scope if self.condition is None else f"project if {self.title!r}"
        return f"{self.role} on {where}"


@dataclass
class Plan:
    """What a dry run prints that matters here: accounts, bindings, custom roles, the key."""

    project: str
    accounts: dict[str, str] = field(default_factory=dict)  # function (entry point) -> service account email
    bindings: list[Binding] = field(default_factory=list)
    custom_roles: dict[str, frozenset[str]] = field(default_factory=dict)
    kms_key: str = ""


def _flag(command: list[str], name: str) -> str | None:
    prefix = f"--{name}="
    values = [arg[len(prefix) :] for arg in command if arg.startswith(prefix)]
    return values[-1] if values else None


def plan_commands(text: str) -> list[list[str]]:
    """Each printed command (`+ ...` lines) split back into its arguments."""
    return [shlex.split(line[2:]) for line in text.splitlines() if line.startswith("+ ")]


def _key(command: list[str], project: str) -> str:
    """The full name of the key a `gcloud kms keys ...` command names."""
    return f"projects/{project}/locations/{_flag(command, 'location')}/keyRings/{_flag(command, 'keyring')}/cryptoKeys/{command[4]}"


def parse_plan(commands: list[list[str]]) -> Plan:
    """The plan's accounts, runtime role bindings, custom roles and KMS key."""
    project = next(str(_flag(command, "project")) for command in commands if _flag(command, "project"))
    plan = Plan(project=project)
    for command in commands:
        if command[:3] == ["gcloud", "functions", "deploy"]:
            entry_point, account = _flag(command, "entry-point"), _flag(command, "service-account")
            if entry_point and account:
                plan.accounts[entry_point] = account
        elif command[:4] == ["gcloud", "iam", "roles", "create"]:
            plan.custom_roles[f"projects/{project}/roles/{command[4]}"] = frozenset(str(_flag(command, "permissions")).split(","))
        elif command[:4] == ["gcloud", "kms", "keys", "create"]:
            plan.kms_key = (
                f"projects/{project}/locations/{_flag(command, 'location')}/keyRings/{_flag(command, 'keyring')}/cryptoKeys/{command[4]}"
            )
    plan.bindings = _bindings(commands, plan)
    return plan


def _bindings(commands: list[list[str]], plan: Plan) -> list[Binding]:
    """The role bindings on the functions' accounts (invoker bindings and service agents' are not code's)."""
    project, found = plan.project, []
    by_account = {account: function for function, account in plan.accounts.items()}
    for command in commands:
        if "add-iam-policy-binding" not in command or command[1] == "functions":
            continue  # who may invoke a function is not what its code may do
        member = str(_flag(command, "member"))
        function = by_account.get(member.removeprefix("serviceAccount:"))
        if function is None:
            continue  # service agents, the trigger and build accounts
        role, line = str(_flag(command, "role")), shlex.join(command)
        condition, title = None, ""
        if command[1] == "projects":
            scope = "project"
            raw = _flag(command, "condition")
            if raw and raw != "None":
                expression, _, title = raw.removeprefix("expression=").rpartition(",title=")
                condition = expression
        elif command[1:3] == ["pubsub", "topics"]:
            scope = f"projects/{project}/topics/{command[4]}"
        elif command[1:3] == ["kms", "keys"]:
            scope = (
                f"projects/{project}/locations/{_flag(command, 'location')}/keyRings/{_flag(command, 'keyring')}/cryptoKeys/{command[4]}"
            )
        else:
            raise ValueError(f"a role binding of a kind this check does not know: {line}")
        found.append(Binding(function, role, scope, condition, title, line))
    return found


def dry_run_plan(*extra: str) -> str:
    """What `deploy.sh --dry-run` prints for the demo project."""
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        [str(ROOT / "deploy.sh"), "--dry-run", "--project", PROJECT, "--region", REGION, *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return result.stdout


# ---------------------------------------------------------------- IAM conditions

_TOKEN = re.compile(r'\s*(\|\||&&|!=|==|!|\(|\)|"(?:[^"\\]|\\.)*"|resource\.name\.startsWith|resource\.name)')


@functools.lru_cache(maxsize=4096)
def condition_holds(expression: str, resource_name: str) -> bool:
    """Evaluate the CEL subset deploy.sh writes (resource.name ==, !=, startsWith, !, &&, ||, parentheses)."""
    tokens: list[str] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:
            if expression[position:].strip():
                raise ValueError(f"IAM condition not understood at {expression[position:]!r}")
            break
        tokens.append(match.group(1))
        position = match.end()
    index = 0

    def take(expected: str | None = None) -> str:
        nonlocal index
        if index >= len(tokens) or (expected is not None and tokens[index] != expected):
            raise ValueError(f"IAM condition not understood: {expression!r}")
        index += 1
        return tokens[index - 1]

    def literal() -> str:
        token = take()
        if not token.startswith('"'):
            raise ValueError(f"IAM condition not understood: {expression!r}")
        return token[1:-1]

    def atom() -> bool:
        token = take()
        if token == "!":
            return not atom()
        if token == "(":
            value = disjunction()
            take(")")
            return value
        if token == "resource.name.startsWith":
            take("(")
            prefix = literal()
            take(")")
            return resource_name.startswith(prefix)
        if token == "resource.name":
            operator = take()
            other = literal()
            if operator == "==":
                return resource_name == other
            if operator == "!=":
                return resource_name != other
        raise ValueError(f"IAM condition not understood: {expression!r}")

    def conjunction() -> bool:
        value = atom()
        while index < len(tokens) and tokens[index] == "&&":
            take()
            value = atom() and value
        return value

    def disjunction() -> bool:
        value = conjunction()
        while index < len(tokens) and tokens[index] == "||":
            take()
            value = conjunction() or value
        return value

    result = disjunction()
    if index != len(tokens):
        raise ValueError(f"IAM condition not understood: {expression!r}")
    return result


# ---------------------------------------------------------------- comparison


def load_roles(path: Path = ROLES_FILE) -> dict[str, frozenset[str]]:
    """The predefined roles table: role -> permissions."""
    raw = yaml.safe_load(path.read_text())["roles"]
    return {name: frozenset(row["permissions"]) for name, row in raw.items()}


def full_name(resource: Resource, plan: Plan) -> str:
    """The resource's full name, as IAM conditions and resource-level bindings see it."""
    base = f"projects/{plan.project}"
    names = {
        "project": base,
        "database": f"{base}/databases/{resource.name}",
        "collection": f"{base}/databases/(default)/documents/{resource.name}",
        "topic": f"{base}/topics/{resource.name}",
        "dataset": f"{base}/datasets/{resource.name}",
        "key": plan.kms_key,
    }
    if resource.kind == "table":
        dataset, _, table = resource.name.partition(".")
        return f"{base}/datasets/{dataset}/tables/{table}"
    return names[resource.kind]


def covers(binding: Binding, resource: str) -> bool:
    """Whether the binding's scope (and condition) reaches the resource."""
    if binding.scope != "project":
        return binding.scope == resource
    return binding.condition is None or condition_holds(binding.condition, resource)


@dataclass(frozen=True)
class Finding:
    """A permission used but not granted, a grant never used, or a custom role's unused permission."""

    kind: str  # "missing", "unused", "unused-in-role"
    function: str
    detail: str


@dataclass
class Report:
    """Per function: used (permission, resource), granted bindings; the findings across all."""

    plan: Plan
    used: dict[str, set[tuple[str, str]]]
    findings: list[Finding]
    central: str

    @property
    def failed(self) -> bool:
        """Whether anything is missing or unused."""
        return bool(self.findings)

    def _shown(self, resource: str) -> str:
        # Every tenant's dataset is alike: one line for all of them.
        return re.sub(r"/datasets/(?!" + re.escape(self.central) + r"(?:/|$))[A-Za-z0-9_]+", "/datasets/{tenant}", resource)

    def render(self) -> str:
        """The report, one block per function, then a summary line."""
        lines: list[str] = []
        for function in sorted(set(self.plan.accounts) | set(self.used)):
            account = self.plan.accounts.get(function, "(not deployed)")
            used = sorted({(permission, self._shown(resource)) for permission, resource in self.used.get(function, set())})
            granted = sorted({binding.describe() for binding in self.plan.bindings if binding.function == function})
            findings = [finding for finding in self.findings if finding.function == function]
            lines.append(f"== {function} ({account})")
            lines.append(f"  used ({len(used)}):")
            lines += [f"    {permission:<44} {resource}" for permission, resource in used]
            lines.append(f"  granted ({len(granted)}):")
            lines += [f"    {grant}" for grant in granted]
            for kind in ("missing", "unused"):
                chosen = sorted({finding.detail for finding in findings if finding.kind == kind})
                lines.append(f"  {kind} ({len(chosen)}):")
                lines += [f"    {kind.upper()}: {function}: {detail}" for detail in chosen]
        for finding in sorted({finding for finding in self.findings if finding.kind == "unused-in-role"}, key=lambda f: f.detail):
            lines.append(f"UNUSED IN CUSTOM ROLE: {finding.detail}")
        missing = len({(f.function, f.detail) for f in self.findings if f.kind == "missing"})
        unused = len([f for f in self.findings if f.kind != "missing"])
        verdict = "FAILED" if self.failed else "passed"
        lines.append(f"iam-check {verdict}: {len(self.plan.accounts)} function accounts, {missing} missing, {unused} unused")
        return "\n".join(lines)


def compare(plan: Plan, usage: dict[str, set[Access]], roles: dict[str, frozenset[str]], central: str) -> Report:
    """Every use against every grant, both ways."""
    findings: list[Finding] = []
    used = {
        function: {(access.permission, full_name(access.resource, plan)) for access in accesses} for function, accesses in usage.items()
    }

    def permissions_of(role: str) -> frozenset[str]:
        if role in plan.custom_roles:
            return plan.custom_roles[role]
        if role not in roles:
            raise KeyError(f"role {role} is granted but not listed in {ROLES_FILE.name}")
        return roles[role]

    shown = Report(plan, used, findings, central)._shown
    for function in sorted(set(used) - set(plan.accounts)):
        findings.append(Finding("missing", function, "no deployed function has this entry point, so no service account"))
    for function, accesses in used.items():
        mine = [binding for binding in plan.bindings if binding.function == function]
        for permission, resource in sorted(accesses):
            if not any(permission in permissions_of(binding.role) and covers(binding, resource) for binding in mine):
                findings.append(Finding("missing", function, f"{permission} on {shown(resource)}"))
    for binding in plan.bindings:
        holds = permissions_of(binding.role)
        if not any(permission in holds and covers(binding, resource) for permission, resource in used.get(binding.function, set())):
            findings.append(Finding("unused", binding.function, f"{binding.describe()} covers nothing it uses"))
    for role, permissions in plan.custom_roles.items():
        holders = [binding for binding in plan.bindings if binding.role == role]
        for permission in sorted(permissions):
            if not any(
                permission == used_permission and covers(binding, resource)
                for binding in holders
                for used_permission, resource in used.get(binding.function, set())
            ):
                findings.append(Finding("unused-in-role", "", f"{role}: {permission} is used by none of its holders"))
    return Report(plan, used, findings, central)


def run_check(plan_text: str, usage: dict[str, set[Access]]) -> Report:
    """The report for one printed plan and one recorded usage."""
    return compare(parse_plan(plan_commands(plan_text)), usage, load_roles(), load_settings().central_dataset)


def record() -> dict[str, set[Access]]:
    """The recorded usage of every function, on a temporary data dir."""
    from scripts.iam_usage import record_usage

    with tempfile.TemporaryDirectory(prefix="iam-check-") as data_dir:
        return record_usage(Path(data_dir))


def main(argv: Iterable[str] | None = None) -> int:
    """Print the report; exit 1 on any finding."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", type=Path, help="a saved `deploy.sh --dry-run` output (default: run the dry run)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    import logging

    logging.disable(logging.CRITICAL)  # the handlers' own logs are not the report
    plan_text = args.plan.read_text() if args.plan else dry_run_plan()
    report = run_check(plan_text, record())
    print(report.render())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
