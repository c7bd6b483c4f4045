"""Google Cloud's behaviour on the embedded backends: latency, quotas and contention, as a model.

`ONBOARDING_CLOUD_PROFILE=gcp` puts a CloudProfile inside the CallGuard that already wraps
every adapter call (shared/adapters/guarded.py). The embedded adapters still do the work;
the profile decides how long each call takes on Google Cloud and whether Google Cloud
would refuse it, and then refuses with our own port exceptions carrying Google's text, so
handlers see what they would see on the real services:

- BigQuery (`warehouse`): a latency per job kind; per table, at most 2 mutating DML
  statements running and 20 queued, the 23rd outstanding refused with BigQuery's error;
  serialization conflicts between mutating DML that overlap on one table, re-run by
  BigQuery up to 3 times; 5 table metadata updates per 10 s per table. Refusals go
  through the same backoff loop as BigQueryWarehouse (shared/adapters/rate_limits.py).
- Firestore (`documents`): read, commit, query and transaction latency; a sustained write
  rate of 1 per second per document (short bursts allowed), beyond which a write is
  ABORTED for contention; transactions re-run on ABORTED the way the client does.
- Pub/Sub and Cloud Functions (`bus`): publish latency, push delivery latency, a cold start
  whenever no idle instance of the function is warm, and the subscription's retry backoff.
- Cloud KMS (`keys`): request latency.

`ONBOARDING_CLOUD_TIME_SCALE` multiplies every duration and every rate window (1 is real
time; 0.01 runs the same model 100 times faster). Latencies are drawn from triangular
distributions (low, mode, high) in seconds at time scale 1.

Where Google publishes a figure or a rule it is cited next to it. Google publishes no
latency figures for most calls; those distributions are typical values stated as such,
kept in one table (LATENCY) so they are easy to revisit.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shared.adapters.rate_limits import with_rate_limit_backoff
from shared.config import CloudProfileSettings, EventBusSettings, Settings
from shared.ports import Document, RateLimited, Transaction, TransactionConflict

logger = logging.getLogger(__name__)
T = TypeVar("T")

BIGQUERY_QUOTAS = "https://cloud.google.com/bigquery/quotas"
BIGQUERY_DML_CONCURRENCY = "https://cloud.google.com/bigquery/docs/data-manipulation-language#update_delete_merge_dml_concurrency"
BIGQUERY_TROUBLESHOOT = "https://cloud.google.com/bigquery/docs/troubleshoot-quotas"
FIRESTORE_QUOTAS = "https://cloud.google.com/firestore/quotas#writes_and_transactions"
FIRESTORE_ERRORS = "https://cloud.google.com/firestore/docs/understand-error-codes"
FIRESTORE_CONTENTION = "https://cloud.google.com/firestore/docs/transaction-data-contention"
PUBSUB_RETRY = "https://cloud.google.com/pubsub/docs/handling-failures#exponential_backoff"
FUNCTIONS_MAX_INSTANCES = "https://cloud.google.com/functions/docs/configuring/max-instances"
FUNCTIONS_COLD_STARTS = "https://cloud.google.com/functions/docs/bestpractices/tips#performance"

# --- BigQuery -----------------------------------------------------------------------------
# "BigQuery runs up to two of them concurrently, after which up to 20 are queued as
# PENDING ... Additional statements past the maximum queue length for each table fail"
# (BIGQUERY_DML_CONCURRENCY; also BIGQUERY_QUOTAS, "Data manipulation language statements").
DML_RUNNING_PER_TABLE = 2
DML_QUEUED_PER_TABLE = 20
TOO_MANY_DML = "Resources exceeded during query execution: Too many DML statements outstanding against table {table}, limit is 20."
# "Mutating DML statements that run concurrently on a table cause DML statement conflicts
# when the statements try to mutate the same partition ... BigQuery tries to rerun failed
# statements up to three times" (BIGQUERY_DML_CONCURRENCY). Our tables are not partitioned:
# two overlapping statements on one table always touch the same partition.
DML_CONFLICT_RERUNS = 3
SERIALIZATION_ERROR = "Could not serialize access to table {table} due to concurrent update"
# "Maximum number of table metadata update operations per table: 5 operations per 10 seconds"
# (BIGQUERY_QUOTAS, "Standard tables"); DDL on a table or view is one such operation. The
# refusal is a 403 rateLimitExceeded with this message (BIGQUERY_TROUBLESHOOT).
METADATA_UPDATES_PER_TABLE = 5
METADATA_WINDOW_SECONDS = 10.0
METADATA_RATE_ERROR = (
    "Exceeded rate limits: too many table update operations for this table. For more information, see " + BIGQUERY_TROUBLESHOOT
)
# The client-side retry of BigQueryWarehouse (shared/adapters/gcp/bigquery_warehouse.py),
# which the profile applies to its own refusals so both paths retry alike.
BIGQUERY_CLIENT_ATTEMPTS = 5
BIGQUERY_CLIENT_BASE_BACKOFF = 0.5
BIGQUERY_CLIENT_MAX_BACKOFF = 30.0

# --- Firestore ----------------------------------------------------------------------------
# "Maximum sustained write rate to a document: 1 per second. Sustaining a write rate above
# once per second increases latency and causes contention errors. This is not a hard limit,
# and you can surpass the limit in short bursts." (FIRESTORE_QUOTAS). Google does not size
# the burst; the profile allows DOCUMENT_WRITE_BURST writes above the sustained rate.
DOCUMENT_WRITES_PER_SECOND = 1.0
DOCUMENT_WRITE_BURST = 5
# The ABORTED text for "a document receiving too many updates per second" (FIRESTORE_ERRORS).
CONTENTION_ERROR = "ABORTED: Too much contention on these documents. Please try again."

# --- Pub/Sub and Cloud Functions ----------------------------------------------------------
# deploy.sh creates push subscriptions with --min-retry-delay=10s --max-retry-delay=600s, the
# bounds of Pub/Sub's exponential backoff (PUBSUB_RETRY).
PUSH_MIN_BACKOFF_SECONDS = 10.0
PUSH_MAX_BACKOFF_SECONDS = 600.0
# A function scales out to 100 instances unless max instances is set (FUNCTIONS_MAX_INSTANCES);
# each 2nd gen event function instance handles one delivery at a time here.
FUNCTION_MAX_INSTANCES = 100
# deploy.sh deploys the step functions with --timeout=300s: a delivery still running then has
# failed, and Pub/Sub delivers the message again (https://cloud.google.com/functions/docs/configuring/timeout).
STEP_FUNCTION_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class Latency:
    """A triangular distribution of one call's duration, in seconds at time scale 1."""

    low: float
    mode: float
    high: float
    source: str

    def draw(self, rng: random.Random) -> float:
        """One duration."""
        return rng.triangular(self.low, self.high, self.mode)


# Typical durations (Google publishes no latency figures for these calls; the pages cited
# describe what each call does and what makes it slower).
LATENCY: dict[str, Latency] = {
    # BigQuery jobs: submitted, scheduled, run and polled to DONE (https://cloud.google.com/bigquery/docs/jobs-overview).
    "bigquery.query": Latency(0.5, 1.0, 2.5, "https://cloud.google.com/bigquery/docs/jobs-overview"),
    "bigquery.mutating_dml": Latency(1.0, 2.0, 5.0, BIGQUERY_DML_CONCURRENCY),
    "bigquery.insert_dml": Latency(0.8, 1.5, 4.0, BIGQUERY_DML_CONCURRENCY),
    "bigquery.ddl": Latency(0.8, 1.5, 3.0, "https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language"),
    # datasets.get/insert/delete and tables.get are REST calls, not jobs.
    "bigquery.dataset_api": Latency(0.1, 0.2, 0.6, "https://cloud.google.com/bigquery/docs/reference/rest/v2/datasets"),
    # Storage Write API appends (or tabledata.insertAll): no job, rows acknowledged in tens of ms.
    "bigquery.append": Latency(0.03, 0.08, 0.3, "https://cloud.google.com/bigquery/docs/write-api"),
    "bigquery.load": Latency(1.5, 3.0, 8.0, "https://cloud.google.com/bigquery/docs/batch-loading-data"),
    # Firestore in the same region as the function (https://cloud.google.com/firestore/docs/best-practices).
    "firestore.read": Latency(0.005, 0.015, 0.08, "https://cloud.google.com/firestore/docs/resolve-latency"),
    "firestore.query": Latency(0.01, 0.03, 0.2, "https://cloud.google.com/firestore/docs/resolve-latency"),
    "firestore.commit": Latency(0.01, 0.03, 0.15, "https://cloud.google.com/firestore/docs/best-practices#reduce_write_latency"),
    "firestore.begin": Latency(0.005, 0.015, 0.06, FIRESTORE_CONTENTION),
    "kms.crypt": Latency(0.01, 0.03, 0.12, "https://cloud.google.com/kms/docs/encrypt-decrypt"),
    "pubsub.publish": Latency(0.01, 0.03, 0.15, "https://cloud.google.com/pubsub/docs/publisher"),
    "pubsub.push": Latency(0.02, 0.06, 0.3, "https://cloud.google.com/pubsub/docs/push"),
    # Instance start plus our imports in Google Cloud mode (`make bench` prints the import share).
    "functions.cold_start": Latency(0.8, 1.5, 4.0, FUNCTIONS_COLD_STARTS),
}

# Warehouse port methods that are not SQL, by what they are on BigQuery.
WAREHOUSE_METHOD_KINDS = {
    "dataset_exists": "dataset_api",
    "create_dataset": "dataset_api",
    "delete_dataset": "dataset_api",
    "table_columns": "dataset_api",
    "append_rows": "append",
    "load_rows": "load",
}
_COMMENT = re.compile(r"--[^\n]*")
_TARGET = re.compile(r"`([^`]+)`")
_WORD_AFTER = re.compile(r"^\s*(?:MERGE|UPDATE|DELETE|INSERT|TRUNCATE)\s+(?:INTO\s+|FROM\s+|TABLE\s+)?([A-Za-z0-9_.\-]+)", re.IGNORECASE)


def classify_sql(sql: str) -> tuple[str, str | None]:
    """(job kind, target table or view) of one statement in BigQuery's dialect."""
    text = _COMMENT.sub("", sql).strip()
    keyword = text.split(None, 1)[0].upper() if text else ""
    if keyword in ("SELECT", "WITH", ""):
        return "query", None
    quoted = _TARGET.search(text)
    target = quoted.group(1) if quoted else None
    if target is None:
        bare = _WORD_AFTER.match(text)
        target = bare.group(1) if bare else None
    if keyword in ("MERGE", "UPDATE", "DELETE", "TRUNCATE"):
        return "mutating_dml", target
    if keyword == "INSERT":
        return "insert_dml", target
    if keyword in ("CREATE", "ALTER", "DROP"):
        return "ddl", target
    return "query", None


@dataclass
class _Table:
    """What BigQuery tracks per table: DML slots and queue, committed versions, metadata updates."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    commit: threading.Lock = field(default_factory=threading.Lock)
    running: int = 0
    pending: deque[object] = field(default_factory=deque)
    version: int = 0
    metadata_updates: deque[float] = field(default_factory=deque)


@dataclass
class _Bucket:
    """A document's write allowance: refills at the sustained rate, holds at most the burst."""

    tokens: float
    updated: float


class _ContentionAborted(Exception):
    """One transaction attempt was ABORTED for contention (the client re-runs it)."""


class ProfileRefused(RuntimeError):
    """The settings ask for a profile that cannot apply (production, or the real Google backends)."""


class CloudProfile:
    """Google Cloud's latency, quotas and contention applied around every embedded adapter call."""

    def __init__(
        self,
        settings: CloudProfileSettings,
        project: str = "local-project",
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        bigquery_client_attempts: int = BIGQUERY_CLIENT_ATTEMPTS,
        dml_conflict_reruns: int = DML_CONFLICT_RERUNS,
    ) -> None:
        self.settings = settings
        self.scale = settings.time_scale
        self.project = project or "local-project"
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random(settings.seed)
        self._rng_lock = threading.Lock()
        self.bigquery_client_attempts = bigquery_client_attempts
        self.dml_conflict_reruns = dml_conflict_reruns
        self._lock = threading.Lock()
        self._tables: dict[str, _Table] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._idle_instances: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()

    # --- shared ---------------------------------------------------------------------------
    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        """Every counter (jobs by kind, queued and refused DML, conflicts, aborts, cold starts...)."""
        with self._lock:
            return dict(self.counts)

    def wait(self, kind: str) -> float:
        """Sleep one draw of `kind`'s latency, scaled; returns the scaled seconds."""
        with self._rng_lock:
            seconds = LATENCY[kind].draw(self._rng) * self.scale
        self._sleep(seconds)
        return seconds

    def _qualified(self, table: str | None) -> str:
        return f"{self.project}:{table or 'unknown'}"

    def _table(self, table: str | None) -> _Table:
        with self._lock:
            return self._tables.setdefault(table or "", _Table())

    # --- the guard's entry points ---------------------------------------------------------
    def call(self, port: str, method: str, subject: str | None, fn: Callable[[], T]) -> T:
        """Run one adapter call as Google Cloud would: after its latency, or refused."""
        if port == "warehouse":
            return self._bigquery(method, subject, fn)
        if port == "documents":
            return self._firestore(method, subject, fn)
        if port == "keys":
            self._count("kms_operations")
            self.wait("kms.crypt")
        elif port == "bus" and method == "publish":
            self._count("pubsub_publishes")
            self.wait("pubsub.publish")
        return fn()

    def transaction(self, run: Callable[[Callable[[Transaction], T], int], T], fn: Callable[[Transaction], T], max_attempts: int) -> T:
        """A Firestore transaction: begin, reads and commit take their latency; ABORTED attempts re-run.

        The Python client re-runs an ABORTED transaction at once, up to max_attempts, keeping
        its place in line (google-cloud-firestore, transaction.py `_Transactional.__call__`);
        `run` is the embedded store's own run_transaction, which re-runs on read conflicts.
        """
        attempts = 0

        def body(transaction: Transaction) -> T:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self._count("firestore_aborted_attempts")
            self.wait("firestore.begin")
            profiled = _ProfiledTransaction(transaction, self)
            result = fn(profiled)
            self._count("firestore_reads", profiled.reads)
            self._count("firestore_writes", len(profiled.written))
            self.wait("firestore.commit")
            for key in sorted(profiled.written):
                if not self._take_write(key):
                    raise _ContentionAborted(key)
            return result

        while True:
            try:
                return run(body, max(1, max_attempts - attempts))
            except _ContentionAborted:
                if attempts >= max_attempts:
                    self._count("firestore_contention_errors")
                    raise TransactionConflict(f"firestore transaction: {CONTENTION_ERROR}") from None

    def push_handler(self, subscription: str, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """`handler` as a Cloud Function behind a push subscription: delivery latency, cold starts."""

        def deliver(message: Any) -> None:
            self.wait("pubsub.push")
            with self._lock:
                warm = self._idle_instances[subscription] > 0
                if warm:
                    self._idle_instances[subscription] -= 1
                self.counts["deliveries"] += 1
            started = time.monotonic()
            if not warm:
                self._count("cold_starts")
                self.wait("functions.cold_start")
            try:
                handler(message)
            finally:
                busy_ms = round((time.monotonic() - started) / self.scale * 1000)
                with self._lock:
                    self._idle_instances[subscription] += 1
                    self.counts["function_busy_ms"] += busy_ms

        return deliver

    def bus_settings(self, settings: EventBusSettings) -> EventBusSettings:
        """The embedded bus configured as deploy.sh configures Pub/Sub: push backoff 10-600 s, functions scaled out, 300 s timeout.

        The handler deadline never drops below the configured one: our own CPU time does not
        shrink with the time scale, and must not turn into timeouts Google Cloud would not have.
        """
        return settings.model_copy(
            update={
                "workers": FUNCTION_MAX_INSTANCES,
                "ack_deadline_seconds": max(settings.ack_deadline_seconds, STEP_FUNCTION_TIMEOUT_SECONDS * self.scale),
                "min_backoff_seconds": PUSH_MIN_BACKOFF_SECONDS * self.scale,
                "max_backoff_seconds": PUSH_MAX_BACKOFF_SECONDS * self.scale,
            }
        )

    # --- BigQuery -------------------------------------------------------------------------
    def _bigquery(self, method: str, subject: str | None, fn: Callable[[], T]) -> T:
        if method in WAREHOUSE_METHOD_KINDS:
            kind, table = WAREHOUSE_METHOD_KINDS[method], subject
        else:
            kind, table = classify_sql(subject or "")
            if kind != "ddl":
                # On-demand billing has a 10 MB minimum per table referenced (https://cloud.google.com/bigquery/pricing).
                self._count("bigquery_tables_referenced", len(set(_TARGET.findall(subject or ""))))
        return with_rate_limit_backoff(
            f"bigquery {kind}",
            lambda: self.job(kind, table, fn),
            attempts=self.bigquery_client_attempts,
            base_backoff_seconds=BIGQUERY_CLIENT_BASE_BACKOFF * self.scale,
            max_backoff_seconds=BIGQUERY_CLIENT_MAX_BACKOFF * self.scale,
            sleep=self._retry_sleep,
        )

    def _retry_sleep(self, seconds: float) -> None:
        self._count("bigquery_client_retries")
        self._sleep(seconds)

    def job(self, kind: str, table: str | None, fn: Callable[[], T]) -> T:
        """One BigQuery job or API call of `kind` on `table`, without the client's retry."""
        self._count(f"bigquery_{kind}")
        if kind == "mutating_dml":
            return self._mutating_dml(table, fn)
        if kind in ("ddl", "load"):
            self._metadata_update(table)
        self.wait(f"bigquery.{kind}")
        return fn()

    def outstanding_dml(self, table: str) -> tuple[int, int]:
        """(running, queued) mutating DML statements on `table`."""
        state = self._table(table)
        with state.cond:
            return state.running, len(state.pending)

    def _mutating_dml(self, table: str | None, fn: Callable[[], T]) -> T:
        state = self._table(table)
        ticket = object()
        with state.cond:
            if state.running + len(state.pending) >= DML_RUNNING_PER_TABLE + DML_QUEUED_PER_TABLE:
                self._count("bigquery_dml_refused")
                raise RateLimited(TOO_MANY_DML.format(table=self._qualified(table)))
            state.pending.append(ticket)
            if state.running >= DML_RUNNING_PER_TABLE or state.pending[0] is not ticket:
                self._count("bigquery_dml_queued")
            while state.running >= DML_RUNNING_PER_TABLE or state.pending[0] is not ticket:
                state.cond.wait()
            state.pending.popleft()
            state.running += 1
            state.cond.notify_all()
        try:
            for run in range(self.dml_conflict_reruns + 1):
                with state.cond:
                    snapshot = state.version
                self.wait("bigquery.mutating_dml")
                with state.commit:
                    if state.version == snapshot:
                        result = fn()
                        with state.cond:
                            state.version += 1
                        return result
                self._count("bigquery_dml_conflicts")
                if run < self.dml_conflict_reruns:
                    self._count("bigquery_dml_reruns")
            self._count("bigquery_serialization_errors")
            raise RateLimited(SERIALIZATION_ERROR.format(table=self._qualified(table)))
        finally:
            with state.cond:
                state.running -= 1
                state.cond.notify_all()

    def _metadata_update(self, table: str | None) -> None:
        state = self._table(table)
        now = self._clock()
        with state.cond:
            while state.metadata_updates and state.metadata_updates[0] <= now - METADATA_WINDOW_SECONDS * self.scale:
                state.metadata_updates.popleft()
            if len(state.metadata_updates) >= METADATA_UPDATES_PER_TABLE:
                self._count("bigquery_metadata_rate_limited")
                raise RateLimited(METADATA_RATE_ERROR)
            state.metadata_updates.append(now)

    # --- Firestore ------------------------------------------------------------------------
    def _firestore(self, method: str, subject: str | None, fn: Callable[[], T]) -> T:
        if method == "get":
            self._count("firestore_reads")
            self.wait("firestore.read")
        elif method == "find":
            self._count("firestore_queries")
            self.wait("firestore.query")
        elif method in ("create", "set", "delete"):
            self._count("firestore_deletes" if method == "delete" else "firestore_writes")
            self.wait("firestore.commit")
            if subject is not None and not self._take_write(subject):
                self._count("firestore_contention_errors")
                raise TransactionConflict(f"firestore {method} {subject}: {CONTENTION_ERROR}")
        return fn()

    def _take_write(self, key: str) -> bool:
        """Spend one write of the document's allowance; False when it is used up (ABORTED)."""
        now = self._clock()
        rate = DOCUMENT_WRITES_PER_SECOND / self.scale
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(float(DOCUMENT_WRITE_BURST), now))
            bucket.tokens = min(float(DOCUMENT_WRITE_BURST), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens < 1:
                self.counts["firestore_write_rate_exceeded"] += 1
                return False
            bucket.tokens -= 1
            return True


class _ProfiledTransaction(Transaction):
    """A transaction whose reads take Firestore's latency and whose written documents are noted."""

    def __init__(self, inner: Transaction, profile: CloudProfile) -> None:
        self._inner = inner
        self._profile = profile
        self.written: set[str] = set()
        self.reads = 0

    def get(self, collection: str, doc_id: str) -> Document | None:
        self.reads += 1
        self._profile.wait("firestore.read")
        return self._inner.get(collection, doc_id)

    def create(self, collection: str, doc_id: str, data: Document) -> None:
        self.written.add(f"{collection}/{doc_id}")
        self._inner.create(collection, doc_id, data)

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        self.written.add(f"{collection}/{doc_id}")
        self._inner.set(collection, doc_id, data)

    def delete(self, collection: str, doc_id: str) -> None:
        self.written.add(f"{collection}/{doc_id}")
        self._inner.delete(collection, doc_id)


def profile_for(settings: Settings) -> CloudProfile | None:
    """The profile the settings ask for; None when ONBOARDING_CLOUD_PROFILE is empty."""
    if not settings.cloud_profile.name:
        return None
    if settings.production:
        raise ProfileRefused("the Google Cloud profile (ONBOARDING_CLOUD_PROFILE) is refused in production")
    if settings.backend != "embedded":
        raise ProfileRefused("the Google Cloud profile models Google Cloud on the embedded backends; the gcp backend is the real thing")
    logger.info("google cloud profile on", extra={"time_scale": settings.cloud_profile.time_scale})
    return CloudProfile(settings.cloud_profile, settings.gcp.project)
