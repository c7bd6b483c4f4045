"""Pipeline runs: admission against the tenant's quota, the executor's reports, leases that run out.

Every change is one transaction on the tenant's state document (the system of record of its
counters) together with the run's own document; the admitted run's message for the executor
is staged in the outbox in that transaction and published after it commits. The usage is then
appended to the analytics copy (tenant_usage_quotas, tenant_pipeline_runs): no DML per run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
import zlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from schemas.events import PipelineRunRequested, PipelineRunResult
from schemas.http import PipelineRunAdmitted, PipelineRunRequest, PipelineRunStatus, QuotaFigure, QuotaStatus
from shared.domain import runs
from shared.domain.documents import PipelineRunDocument, RunAdmissionRecord
from shared.domain.errors import (
    DomainError,
    IdempotencyKeyReused,
    InvalidRequest,
    PermanentEventError,
    RunNotFound,
    TenantNotFound,
)
from shared.domain.identifiers import pipeline_segment_problem, tenant_id_problem
from shared.domain.tenant import RunStatus, TenantState
from shared.handlers.analytics_copy import plan_of
from shared.handlers.dead_letter_store import readable_ids, record_message_dead_letter
from shared.handlers.run_records import copy_usage, document_row, expired_documents, write_expired
from shared.handlers.step_commands import relay, stage_event
from shared.handlers.tenant_keys import authenticate_key
from shared.ports import Transaction
from shared.services import IDEMPOTENCY_KEYS, PIPELINE_RUNS, TENANTS, Services, iso

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelinePath:
    """The run's path: whose, and which pipeline (provider/domain/template)."""

    tenant_id: str
    provider: str
    domain: str
    template: str

    @property
    def pipeline_id(self) -> str:
        """provider/domain/template."""
        return f"{self.provider}/{self.domain}/{self.template}"

    def validated(self) -> PipelinePath:
        """Itself, or InvalidRequest naming the first segment that is not usable."""
        problem = tenant_id_problem(self.tenant_id)
        if problem is not None:
            raise InvalidRequest(problem, field="tenant_id")
        for name in ("provider", "domain", "template"):
            problem = pipeline_segment_problem(name, getattr(self, name))
            if problem is not None:
                raise InvalidRequest(problem, field=name)
        return self


@dataclass
class _Admission:
    """What one attempt of the admission transaction decided (the transaction may run more than once)."""

    replay: str | None = None
    refused: DomainError | None = None
    state: TenantState | None = None
    expired: list[PipelineRunDocument] = field(default_factory=list)
    staged: list[str] = field(default_factory=list)
    document: PipelineRunDocument | None = None  # the run admitted


def _idempotency_id(tenant_id: str, key: str) -> str:
    """A pipeline run's key is the tenant's own: two tenants may use the same key."""
    return hashlib.sha256(f"pipeline_run\x1f{tenant_id}\x1f{key}".encode()).hexdigest()


def _fingerprint(path: PipelinePath, request: PipelineRunRequest) -> str:
    payload = json.dumps([path.pipeline_id, request.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def admit_pipeline_run(
    services: Services,
    path: PipelinePath,
    api_key: str | None,
    request: PipelineRunRequest,
    idempotency_key: str | None = None,
) -> PipelineRunAdmitted:
    """Admit one run of the tenant's pipeline against its quota (one transaction), or refuse it.

    Raises QuotaExceeded (429, with Retry-After), TenantSuspended (403), TenantNotReady (409),
    TenantNotFound (404) or IdempotencyKeyReused (422). A retry with the same Idempotency-Key
    gets the first answer again while the record lives (http.idempotency_ttl_hours).
    """
    path = path.validated()
    authenticate_key(path.tenant_id, api_key, services)
    idempotency_id = _idempotency_id(path.tenant_id, idempotency_key) if idempotency_key else None
    refused = None if idempotency_id else _refusal_on_read(services, path.tenant_id)
    if refused is not None:
        raise refused
    admitted = _admit(services, _Ask(path, request, str(uuid.uuid4()), idempotency_id, _fingerprint(path, request)))
    if admitted is None:
        raise RuntimeError("a fresh pipeline_logging_id was found recorded")
    return admitted


def _refusal_on_read(services: Services, tenant_id: str) -> DomainError | None:
    """The refusal a plain read of the state document already decides, with no transaction; None to go on.

    A read outside a transaction is strongly consistent in Firestore
    (https://cloud.google.com/firestore/docs/concepts/transaction-options), so a refusal decided on
    it is the answer the request would have had at that instant: exact, and it spares the state
    document a transaction (and the contention of one) for every request over quota. A state with
    a lease run out goes to the transaction, which records the slots it frees.
    """
    raw = services.documents.get(TENANTS, tenant_id)
    if raw is None:
        return None
    now = services.clock()
    state = TenantState.model_validate(raw)
    if runs.expire_leases(state, now)[1]:
        return None
    try:
        runs.admit(state, plan_of(state, services), "probe", now, timedelta(seconds=1))
    except DomainError as refusal:
        return refusal
    return None


class TenantLocks:
    """Admissions of one tenant in one process wait here, in turn, rather than contend for its state document.

    Firestore resolves contention on a document by aborting and retrying transactions
    (https://cloud.google.com/firestore/docs/transaction-data-contention), each retry a round
    trip with backoff; requests of one instance need not pay that among themselves. Across
    instances the transaction alone keeps admission exact. Striped: a fixed number of locks.
    """

    def __init__(self, stripes: int = 64) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    def of(self, tenant_id: str) -> AbstractContextManager[object]:
        """The lock of `tenant_id`'s stripe."""
        return self._locks[zlib.crc32(tenant_id.encode()) % len(self._locks)]


ADMISSION_LOCKS = TenantLocks()


@dataclass(frozen=True)
class _Ask:
    """One admission request: the run's path, body and id, and its Idempotency-Key's record id."""

    path: PipelinePath
    request: PipelineRunRequest
    run_id: str
    idempotency_id: str | None
    fingerprint: str
    known_run: bool = False  # the caller chose run_id: a run recorded under it already is not admitted again


def _admit(services: Services, ask: _Ask) -> PipelineRunAdmitted | None:
    """The admission transaction and what follows its commit; None when `ask.known_run` and the run is recorded already."""
    now = services.clock()
    decided = _Admission()

    def attempt(txn: Transaction) -> None:
        nonlocal decided
        decided = _decide(txn, services, ask, now)

    with ADMISSION_LOCKS.of(ask.path.tenant_id):
        services.documents.run_transaction(attempt)
    if decided.state is not None and (decided.document is not None or decided.expired):
        relay(services, decided.staged)  # what fails to go out stays in the outbox for the reconciler
        changed = [*([decided.document] if decided.document else []), *decided.expired]
        copy_usage(services, decided.state, [document_row(decided.state, document) for document in changed], strict=False)
    if decided.refused is not None:
        raise decided.refused
    if decided.replay is None:
        return None  # recorded earlier under this id (record_pipeline_run)
    if decided.document is not None:
        logger.info("pipeline run admitted", extra={"tenant_id": ask.path.tenant_id, "pipeline_logging_id": ask.run_id})
    return PipelineRunAdmitted.model_validate_json(decided.replay)


def _replayed(txn: Transaction, ask: _Ask, now: datetime) -> str | None:
    """The first response under this Idempotency-Key while its record lives; IdempotencyKeyReused for another request."""
    record = txn.get(IDEMPOTENCY_KEYS, ask.idempotency_id) if ask.idempotency_id else None
    if record is None or datetime.fromisoformat(str(record.get("expires_at"))) <= now:
        return None
    stored = RunAdmissionRecord.model_validate(record)
    if stored.fingerprint != ask.fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used for a different request", field="Idempotency-Key")
    return stored.response


def _decide(txn: Transaction, services: Services, ask: _Ask, now: datetime) -> _Admission:
    """One attempt of the admission transaction: reads, the decision, and the writes it calls for."""
    decided, stamp, path, run_id = _Admission(), iso(now), ask.path, ask.run_id
    decided.replay = _replayed(txn, ask, now)
    if decided.replay is not None:
        return decided
    raw = txn.get(TENANTS, path.tenant_id)
    if raw is None:
        raise TenantNotFound(f"no tenant '{path.tenant_id}'", field="tenant_id")
    if ask.known_run and txn.get(PIPELINE_RUNS, run_id) is not None:
        return decided
    current, expired = runs.expire_leases(TenantState.model_validate(raw), now)
    expired_docs = expired_documents(txn, expired, stamp)
    try:
        lease = timedelta(seconds=services.settings.pipeline_runs.lease_seconds)
        admitted = runs.admit(current, plan_of(current, services), run_id, now, lease).touched(stamp)
    except DomainError as refusal:
        decided.refused = refusal
        if expired:  # the slots freed are recorded even though this run is refused
            decided.state, decided.expired = current.touched(stamp), expired_docs
            write_expired(txn, decided.state, expired_docs)
        return decided
    write_expired(txn, admitted, expired_docs)
    lease_until = admitted.running[run_id].lease_until
    document = PipelineRunDocument(
        pipeline_logging_id=run_id,
        tenant_id=path.tenant_id,
        pipeline_id=path.pipeline_id,
        status="PENDING",
        admitted_at=stamp,
        lease_until=lease_until,
        date=ask.request.date,
        parameters=ask.request.parameters,
    )
    txn.create(PIPELINE_RUNS, run_id, document.model_dump())
    message = PipelineRunRequested(
        event_id=run_id,
        pipeline_logging_id=run_id,
        tenant_id=path.tenant_id,
        pipeline_id=path.pipeline_id,
        provider=path.provider,
        domain=path.domain,
        template=path.template,
        date=ask.request.date,
        parameters=ask.request.parameters,
        lease_until=lease_until,
        occurred_at=stamp,
    )
    topic = services.settings.topics.pipeline_runs
    decided.staged.append(stage_event(txn, services, topic, message, event_id=run_id, tenant_id=path.tenant_id))
    body = _admitted_body(admitted, run_id, path, services, now).model_dump_json()
    if ask.idempotency_id:
        replay_until = iso(now + timedelta(hours=services.settings.http.idempotency_ttl_hours))
        stored = RunAdmissionRecord(
            id=ask.idempotency_id,
            fingerprint=ask.fingerprint,
            tenant_id=path.tenant_id,
            pipeline_logging_id=run_id,
            response=body,
            created_at=stamp,
            expires_at=replay_until,
            expire_at=replay_until,
        )
        txn.set(IDEMPOTENCY_KEYS, ask.idempotency_id, stored.model_dump())  # over an expired record of the same key, if any
    decided.state, decided.expired, decided.document, decided.replay = admitted, expired_docs, document, body
    return decided


def _admitted_body(state: TenantState, run_id: str, path: PipelinePath, services: Services, now: datetime) -> PipelineRunAdmitted:
    quota = runs.snapshot(state, plan_of(state, services), now.date())
    return PipelineRunAdmitted(
        pipeline_logging_id=run_id,
        tenant_id=path.tenant_id,
        pipeline_id=path.pipeline_id,
        status="PENDING",
        quota=QuotaStatus(
            daily=QuotaFigure(used=quota.daily.used, limit=quota.daily.limit),
            monthly=QuotaFigure(used=quota.monthly.used, limit=quota.monthly.limit),
            concurrent=QuotaFigure(used=quota.concurrent.used, limit=quota.concurrent.limit),
        ),
        message=f"Pipeline {path.pipeline_id} admitted; it runs when the executor takes it",
    )


# --- the executor's reports ----------------------------------------------------------------------

Outcome = Literal["applied", "ignored"]


def apply_run_result(report: PipelineRunResult, services: Services) -> PipelineRunStatus:
    """Apply an executor's report: RUNNING renews the lease, SUCCEEDED or FAILED frees the slot and counts the run.

    Idempotent and tolerant of order: a finished run stays finished (a duplicate, a RUNNING
    after its SUCCEEDED, a result after its lease ran out are ignored). RunNotFound for a run
    unknown to this tenant. The copy is appended whatever the outcome, so a redelivery after a
    failed append completes it.
    """
    now = services.clock()
    stamp = iso(now)
    lease = timedelta(seconds=services.settings.pipeline_runs.lease_seconds)

    def attempt(txn: Transaction) -> tuple[Outcome, PipelineRunDocument, TenantState]:
        raw = txn.get(PIPELINE_RUNS, report.pipeline_logging_id)
        document = PipelineRunDocument.model_validate(raw) if raw is not None else None
        if document is None or document.tenant_id != report.tenant_id:
            raise RunNotFound(f"no pipeline run '{report.pipeline_logging_id}' of tenant '{report.tenant_id}'", field="pipeline_logging_id")
        tenant = txn.get(TENANTS, document.tenant_id)
        if tenant is None:
            raise RunNotFound(f"tenant '{document.tenant_id}' of run '{report.pipeline_logging_id}' is gone", field="tenant_id")
        state = TenantState.model_validate(tenant)
        status = runs.next_status(document.status, report.status)
        if status is None:
            return "ignored", document, state
        if status == "RUNNING":
            state = runs.renew(state, document.pipeline_logging_id, now, lease)
            held = state.running.get(document.pipeline_logging_id)
            update = {"status": "RUNNING", "started_at": document.started_at or stamp, "lease_until": held.lease_until if held else None}
            document = document.model_copy(update=update)
        else:
            finished: RunStatus = "SUCCEEDED" if status == "SUCCEEDED" else "FAILED"
            state = runs.finish(state, document.pipeline_logging_id, finished, now.date())
            update = {"status": finished, "finished_at": stamp, "lease_until": None, "reason": report.reason}
            document = document.model_copy(update=update)
        state = state.touched(stamp)
        txn.set(TENANTS, state.tenant_id, state.model_dump())
        txn.set(PIPELINE_RUNS, document.pipeline_logging_id, document.model_dump())
        return "applied", document, state

    outcome, document, state = services.documents.run_transaction(attempt)
    copy_usage(services, state, [document_row(state, document)], strict=True)
    return PipelineRunStatus(
        pipeline_logging_id=document.pipeline_logging_id,
        tenant_id=document.tenant_id,
        pipeline_id=document.pipeline_id,
        status=document.status,
        reason=document.reason,
        outcome=outcome,
    )


def handle_run_result(report: PipelineRunResult, services: Services) -> str:
    """Topic pipeline-run-results: apply one report; a run that does not exist can never apply (dead letter)."""
    try:
        return apply_run_result(report, services).outcome
    except RunNotFound as error:
        raise PermanentEventError(error.message) from None


def handle_run_result_dead_letter(data: bytes, reason: str, services: Services, attributes: dict[str, str] | None = None) -> str:
    """Keep a report that can never apply among the dead letters, once."""
    event_id, tenant_id = readable_ids(data)
    created = record_message_dead_letter(
        services,
        data,
        reason,
        attributes or {},
        default_source=services.settings.topics.pipeline_run_results,
        event_id=event_id,
        tenant_id=tenant_id,
    )
    return "recorded" if created else "duplicate"


# --- a finished run in one call ------------------------------------------------------------------


def record_pipeline_run(services: Services, tenant_id: str, run_id: str, pipeline_name: str, status: RunStatus) -> TenantState:
    """Admit a run under `run_id` (once) and report it finished: the path of a run whose executor is in-process.

    `pipeline_name` is provider/domain/template. Raises what admission raises.
    """
    provider, domain, template = [*pipeline_name.split("/"), "run", "run"][:3]
    path = PipelinePath(tenant_id, provider, domain, template).validated()
    _admit(services, _Ask(path, PipelineRunRequest(), run_id, None, run_id, known_run=True))
    occurred = services.clock()
    report = PipelineRunResult(
        event_id=f"{run_id}.{status}", pipeline_logging_id=run_id, tenant_id=tenant_id, status=status, occurred_at=occurred
    )
    apply_run_result(report, services)
    raw = services.documents.get(TENANTS, tenant_id)
    if raw is None:
        raise TenantNotFound(f"no tenant '{tenant_id}'", field="tenant_id")
    return TenantState.model_validate(raw)
