"""`onboarding`: tenants, dead letters and billing events from the command line, through the HTTP API.

Results go to stdout (`--json` for scripts), progress and errors to stderr; an error is one
line and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from cli.client import AUDIENCE_ENV, DATA_DIR_ENV, DEFAULT_URL, URL_ENV, Api, CliError

# rich_markup_mode=None: an error is CliError.show's one line, not a framed panel.
app = typer.Typer(
    help="Operate the tenant onboarding API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
tenants = typer.Typer(help="Onboard, inspect and administer tenants.", no_args_is_help=True, rich_markup_mode=None)
dead_letters = typer.Typer(help="Messages given up on.", no_args_is_help=True, rich_markup_mode=None)
billing = typer.Typer(help="Billing events.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(tenants, name="tenants")
app.add_typer(dead_letters, name="dead-letters")
app.add_typer(billing, name="billing")

TENANTS = "/api/v1/tenants"
POLL_SECONDS = 0.25
FINAL = frozenset({"ACTIVE", "FAILED", "SUSPENDED", "OFFBOARDED"})


F = TypeVar("F", bound=Callable[..., None])


def command(group: typer.Typer, name: str) -> Callable[[F], F]:
    """Register a command whose CliError becomes one line on stderr and exit status 1 (never a traceback)."""

    def register(function: F) -> F:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> None:
            try:
                function(*args, **kwargs)
            except (typer.Exit, typer.Abort):
                raise
            except CliError as error:
                typer.echo(f"error: {error.message}", err=True)
                raise typer.Exit(1) from None
            except Exception as error:  # an answer this CLI did not expect: still one line
                typer.echo(f"error: unexpected {type(error).__name__}: {error}", err=True)
                raise typer.Exit(1) from None

        group.command(name)(run)
        return function

    return register


class Auth(StrEnum):
    """Where the operator credential comes from."""

    auto = "auto"
    token = "token"
    google = "google"


JsonOut = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer (for scripts).")]
TenantId = Annotated[str, typer.Argument(help="The tenant's id.")]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the tenant's audit trail).")]


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[str, typer.Option("--url", envvar=URL_ENV, help="Base URL of the API.")] = DEFAULT_URL,
    auth: Annotated[Auth, typer.Option("--auth", help="auto: the local token if there is one, else a Google ID token.")] = Auth.auto,
    token: Annotated[str | None, typer.Option("--token", help="An operator bearer token to send as is.")] = None,
    audience: Annotated[
        str | None, typer.Option("--audience", envvar=AUDIENCE_ENV, help="Google ID token audience (default: --url).")
    ] = None,
    data_dir: Annotated[str | None, typer.Option("--data-dir", envvar=DATA_DIR_ENV, help="Where `make run` keeps operator-token.")] = None,
) -> None:
    """Operate the tenant onboarding API (credential: ONBOARDING_OPERATOR_TOKEN, <data dir>/operator-token or a Google ID token)."""
    ctx.obj = Api(url=url, auth=auth.value, token=token, audience=audience, data_dir=data_dir)


def _api(ctx: typer.Context) -> Api:
    api: Api = ctx.find_root().obj
    return api


def _stdout(json_out: bool, body: Any) -> bool:
    """Print `body` as JSON when asked; True if it did."""
    if json_out:
        typer.echo(json.dumps(body, indent=2))
    return json_out


def _table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*["" if value is None else str(value) for value in row])
    return table


def _checks_table(dry: dict[str, Any]) -> Table:
    summary = dry["validation_summary"]
    title = f"dry run of {dry['tenant_id']}: {summary['passed']}/{summary['total_checks']} checks passed"
    rows = [["pass" if check["passed"] else "FAIL", check["name"], check["detail"]] for check in dry["checks"]]
    return _table(title, ["", "check", "detail"], rows)


def _steps_table(status: dict[str, Any]) -> Table:
    title = f"{status['tenant_id']}: {status['status']} ({status['subscription_plan']})"
    rows = [[s["name"], s["status"], s["attempts"], s.get("error") or ""] for s in status["steps"]]
    return _table(title, ["step", "status", "attempts", "error"], rows)


def _request(tenant_id: str, company: str, email: str, plan: str) -> dict[str, str]:
    return {"tenant_id": tenant_id, "company_name": company, "admin_email": email, "subscription_plan": plan}


def _follow(api: Api, tenant_id: str, timeout: float, progress: Console | None) -> dict[str, Any]:
    """Poll the tenant's status until it leaves PROVISIONING; show each step's progress on `progress`.

    On a terminal the steps are one live table; elsewhere (a log, a pipe) each change is a line.
    """
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    live = Live(console=progress, auto_refresh=False, transient=False) if progress is not None and progress.is_terminal else None
    if live is not None:
        live.start()
    try:
        while True:
            status: dict[str, Any] = api.call("GET", f"{TENANTS}/{tenant_id}")
            if live is not None:
                live.update(_steps_table(status), refresh=True)
            elif progress is not None:
                for step in status["steps"]:
                    if seen.get(step["name"]) != step["status"]:
                        progress.print(f"  {step['name']:<14} {step['status']}", highlight=False)
                        seen[step["name"]] = step["status"]
            if status["status"] in FINAL:
                return status
            if time.monotonic() >= deadline:
                raise CliError(
                    f"tenant '{tenant_id}' is still {status['status']} after {timeout:g} s; see `onboarding tenants status {tenant_id}`"
                )
            time.sleep(POLL_SECONDS)
    finally:
        if live is not None:
            live.stop()


@command(tenants, "dryrun")
def dryrun(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Option("--tenant-id")],
    company: Annotated[str, typer.Option("--company")],
    email: Annotated[str, typer.Option("--email")],
    plan: Annotated[str, typer.Option("--plan")],
    json_out: JsonOut = False,
) -> None:
    """Run the onboarding checks (creates nothing); exit 1 if one fails."""
    dry = _api(ctx).call("POST", f"{TENANTS}/dryrun", _request(tenant_id, company, email, plan))
    if not _stdout(json_out, dry):
        Console().print(_checks_table(dry))
    if not dry["ready_for_onboarding"]:
        raise typer.Exit(1)


@command(tenants, "onboard")
def onboard(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Option("--tenant-id")],
    company: Annotated[str, typer.Option("--company")],
    email: Annotated[str, typer.Option("--email")],
    plan: Annotated[str, typer.Option("--plan")],
    force_recreate_dataset: Annotated[bool, typer.Option("--force-recreate-dataset")] = False,
    force_recreate_tables: Annotated[bool, typer.Option("--force-recreate-tables")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to follow provisioning.")] = 300.0,
    json_out: JsonOut = False,
    key_only: Annotated[bool, typer.Option("--key-only", help="Print only the API key on stdout (progress on stderr).")] = False,
) -> None:
    """Dry run, then onboard and follow each step until ACTIVE (exit 0) or FAILED (exit 1); prints the API key once."""
    api = _api(ctx)
    out, err = Console(), Console(stderr=True)
    human = err if key_only else out
    request = _request(tenant_id, company, email, plan)
    dry = api.call("POST", f"{TENANTS}/dryrun", request)
    if not dry["ready_for_onboarding"]:
        if not _stdout(json_out, {"dry_run": dry}):
            human.print(_checks_table(dry))
        raise typer.Exit(1)
    body = {**request, "force_recreate_dataset": force_recreate_dataset, "force_recreate_tables": force_recreate_tables}
    # A retried request (a lost answer) gets the first response back instead of TENANT_EXISTS.
    accepted = api.call("POST", f"{TENANTS}/onboard", body, headers={"Idempotency-Key": f"cli-{uuid.uuid4()}"})
    if not json_out:
        human.print(f"{tenant_id}: dry run passed, provisioning", highlight=False)
    final = _follow(api, tenant_id, timeout, None if json_out else human)
    result = {
        "tenant_id": tenant_id,
        "status": final["status"],
        "subscription_plan": final["subscription_plan"],
        "api_key": accepted["api_key"],
        "error": final.get("error"),
        "steps": final["steps"],
    }
    if _stdout(json_out, result):
        pass
    elif key_only:
        typer.echo(accepted["api_key"])
    else:
        out.print(f"{tenant_id} is {final['status']}", highlight=False)
        out.print(f"API key (shown this once, keep it now): {accepted['api_key']}", highlight=False, soft_wrap=True)
    if final["status"] != "ACTIVE":
        raise CliError(f"tenant '{tenant_id}' is {final['status']}: {final.get('error') or 'see its steps'}")


@command(tenants, "status")
def status(ctx: typer.Context, tenant_id: TenantId, json_out: JsonOut = False) -> None:
    """Status, plan and every provisioning step of a tenant."""
    body = _api(ctx).call("GET", f"{TENANTS}/{tenant_id}")
    if not _stdout(json_out, body):
        console = Console()
        console.print(_steps_table(body))
        if body.get("error"):
            console.print(f"error: {body['error']}", highlight=False)


@command(tenants, "list")
def list_tenants(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="PROVISIONING, ACTIVE, FAILED, SUSPENDED or OFFBOARDED.")] = None,
    plan: Annotated[str | None, typer.Option("--plan")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Page size (1 to 1000).")] = None,
    page_token: Annotated[str | None, typer.Option("--page-token")] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow next_page_token to the end.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Tenants newest first, optionally of one status and one plan."""
    api = _api(ctx)
    found: list[dict[str, Any]] = []
    token = page_token
    while True:
        page = api.call("GET", TENANTS, params={"status": status, "plan": plan, "limit": limit, "page_token": token})
        found += page["tenants"]
        token = page.get("next_page_token")
        if not all_pages or token is None:
            break
    if _stdout(json_out, {"count": len(found), "tenants": found, "next_page_token": token}):
        return
    rows = [
        [t["tenant_id"], t["status"], t["subscription_plan"], t["company_name"], _steps_summary(t["steps"]), t["created_at"]] for t in found
    ]
    console = Console()
    console.print(_table(f"{len(found)} tenant(s)", ["tenant", "status", "plan", "company", "steps", "created"], rows))
    if token is not None:
        console.print(f"more: --page-token {token}", highlight=False, soft_wrap=True)


def _steps_summary(steps: list[dict[str, Any]]) -> str:
    return " ".join(f"{step['name']}:{step['status']}" for step in steps)


@command(tenants, "retry")
def retry(
    ctx: typer.Context,
    tenant_id: TenantId,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Follow the steps until ACTIVE or FAILED.")] = True,
    timeout: Annotated[float, typer.Option("--timeout")] = 300.0,
    json_out: JsonOut = False,
) -> None:
    """Re-drive the failed steps of a FAILED tenant; follows them until ACTIVE (exit 0) or FAILED (exit 1)."""
    api = _api(ctx)
    accepted = api.call("POST", f"{TENANTS}/{tenant_id}/retry")
    if not follow:
        if not _stdout(json_out, accepted):
            Console().print(f"{tenant_id}: retrying {', '.join(accepted['retried_steps'])}", highlight=False)
        return
    final = _follow(api, tenant_id, timeout, None if json_out else Console())
    if not _stdout(json_out, final):
        Console().print(f"{tenant_id} is {final['status']}", highlight=False)
    if final["status"] != "ACTIVE":
        raise CliError(f"tenant '{tenant_id}' is {final['status']}: {final.get('error') or 'see its steps'}")


def _act(ctx: typer.Context, tenant_id: str, action: str, reason: str, json_out: bool) -> None:
    body = _api(ctx).call("POST", f"{TENANTS}/{tenant_id}/{action}", {"reason": reason})
    if not _stdout(json_out, body):
        Console().print(f"{tenant_id}: {body['status_before']} -> {body['status']} ({body['outcome']}: {body['detail']})", highlight=False)


@command(tenants, "suspend")
def suspend(ctx: typer.Context, tenant_id: TenantId, reason: Reason, json_out: JsonOut = False) -> None:
    """Suspend a live tenant (its API keys are refused until it is resumed)."""
    _act(ctx, tenant_id, "suspend", reason, json_out)


@command(tenants, "resume")
def resume(ctx: typer.Context, tenant_id: TenantId, reason: Reason, json_out: JsonOut = False) -> None:
    """Resume a suspended tenant."""
    _act(ctx, tenant_id, "resume", reason, json_out)


@command(tenants, "offboard")
def offboard(ctx: typer.Context, tenant_id: TenantId, reason: Reason, json_out: JsonOut = False) -> None:
    """Offboard a live tenant: its API keys are revoked, its data kept until the purge."""
    _act(ctx, tenant_id, "offboard", reason, json_out)


@command(tenants, "rotate-key")
def rotate_key(
    ctx: typer.Context,
    tenant_id: TenantId,
    reason: Reason,
    grace_hours: Annotated[
        float | None, typer.Option("--grace-hours", help="Hours the old key keeps working (0: refused at once).")
    ] = None,
    json_out: JsonOut = False,
    key_only: Annotated[bool, typer.Option("--key-only", help="Print only the new API key.")] = False,
) -> None:
    """A new API key, shown this once; the old one works for the grace period."""
    body: dict[str, Any] = {"reason": reason}
    if grace_hours is not None:
        body["grace_hours"] = grace_hours
    rotated = _api(ctx).call("POST", f"{TENANTS}/{tenant_id}/api-keys/rotate", body)
    if _stdout(json_out, rotated):
        return
    if key_only:
        typer.echo(rotated["api_key"])
        return
    console = Console()
    console.print(f"new API key {rotated['key_id']} (shown this once, keep it now): {rotated['api_key']}", highlight=False, soft_wrap=True)
    console.print(f"old key {rotated['previous_key_id']} works until {rotated['previous_key_expires_at']}", highlight=False)


@command(tenants, "revoke-key")
def revoke_key(
    ctx: typer.Context,
    tenant_id: TenantId,
    reason: Reason,
    key_id: Annotated[str | None, typer.Option("--key-id", help="The rotated-out key to revoke (default: every one in grace).")] = None,
    json_out: JsonOut = False,
) -> None:
    """Refuse at once keys rotated out and still in their grace period."""
    body: dict[str, Any] = {"reason": reason}
    if key_id is not None:
        body["key_id"] = key_id
    revoked = _api(ctx).call("POST", f"{TENANTS}/{tenant_id}/api-keys/revoke", body)
    if not _stdout(json_out, revoked):
        names = ", ".join(revoked["revoked"]) or "nothing left to revoke"
        Console().print(f"{tenant_id}: revoked {names}; current key {revoked['current_key_id']}", highlight=False)


@command(tenants, "events")
def events(
    ctx: typer.Context,
    tenant_id: TenantId,
    limit: Annotated[int | None, typer.Option("--limit")] = None,
    json_out: JsonOut = False,
) -> None:
    """The tenant's audit trail: billing events and operators' actions, oldest first."""
    api = _api(ctx)
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = api.call("GET", f"{TENANTS}/{tenant_id}/events", params={"limit": limit, "page_token": token})
        found += page["events"]
        token = page.get("next_page_token")
        if token is None:
            break
    if _stdout(json_out, {"tenant_id": tenant_id, "count": len(found), "events": found}):
        return
    rows = [
        [
            e["occurred_at"],
            e["type"],
            e.get("source"),
            e.get("outcome"),
            f"{e.get('status_before') or ''} -> {e.get('status_after') or ''}",
            e.get("actor"),
            e.get("reason") or e.get("detail"),
        ]
        for e in found
    ]
    Console().print(_table(f"audit trail of {tenant_id}", ["occurred", "type", "source", "outcome", "status", "by", "why"], rows))


@command(dead_letters, "list")
def list_dead_letters(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="OPEN or RETRIED.")] = None,
    tenant_id: Annotated[str | None, typer.Option("--tenant-id")] = None,
    limit: Annotated[int | None, typer.Option("--limit")] = None,
    json_out: JsonOut = False,
) -> None:
    """Messages given up on, newest first, with their reason."""
    body = _api(ctx).call("GET", "/api/v1/dead-letters", params={"status": status, "tenant_id": tenant_id, "limit": limit})
    if _stdout(json_out, body):
        return
    rows = [
        [d["dead_lettered_at"], d["status"], d.get("tenant_id"), d.get("step"), d["attempts"], d["reason"]] for d in body["dead_letters"]
    ]
    Console().print(_table(f"{body['count']} dead letter(s)", ["when", "status", "tenant", "step", "attempts", "reason"], rows))


class BillingType(StrEnum):
    """The billing event types the API accepts."""

    plan_changed = "plan_changed"
    payment_failed = "payment_failed"
    payment_recovered = "payment_recovered"
    subscription_cancelled = "subscription_cancelled"


@command(billing, "publish")
def publish(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Option("--tenant-id")],
    event_type: Annotated[BillingType, typer.Option("--type")],
    new_plan: Annotated[str | None, typer.Option("--new-plan", help="For plan_changed.")] = None,
    occurred_at: Annotated[str | None, typer.Option("--occurred-at", help="RFC 3339 (default: now).")] = None,
    event_id: Annotated[str | None, typer.Option("--event-id", help="Default: a new one.")] = None,
    source: Annotated[str, typer.Option("--source")] = "onboarding-cli",
    json_out: JsonOut = False,
) -> None:
    """Publish one billing event; its outcome shows in `tenants events`."""
    body: dict[str, Any] = {
        "event_id": event_id or f"cli-{uuid.uuid4().hex}",
        "tenant_id": tenant_id,
        "type": event_type.value,
        "occurred_at": occurred_at or datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": source,
    }
    if new_plan is not None:
        body["new_plan"] = new_plan
    accepted = _api(ctx).call("POST", "/api/v1/billing/events", body)
    if not _stdout(json_out, accepted):
        Console().print(
            f"billing event {accepted['event_id']} accepted for {tenant_id}; outcome: onboarding tenants events {tenant_id}",
            highlight=False,
        )


def main() -> None:
    """The console script: `onboarding`."""
    app()
