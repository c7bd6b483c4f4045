"""BigQueryWarehouse: the Warehouse port on BigQuery, running our SQL from shared/sql unchanged."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from google.api_core import exceptions as google_errors
from google.cloud import bigquery

from shared.adapters.gcp.errors import google_errors_as_ours
from shared.adapters.rate_limits import with_rate_limit_backoff
from shared.ports import BackendError, RateLimited, Row, Warehouse

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Legacy names the API may report in a table schema, and the Standard SQL names our DDL declares.
_STANDARD_TYPES = {
    "INTEGER": "INT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOL",
    "RECORD": "STRUCT",
}
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "jobRateLimitExceeded"})
_CONCURRENT_DML_MARKERS = ("Too many DML statements outstanding against table", "due to concurrent update")


def query_parameter(name: str, value: Any) -> bigquery.ScalarQueryParameter:
    """A typed named parameter for `@name` (bool is checked before int: it is one in Python)."""
    if value is None:
        kind = "STRING"
    elif isinstance(value, bool):
        kind = "BOOL"
    elif isinstance(value, int):
        kind = "INT64"
    elif isinstance(value, float):
        kind = "FLOAT64"
    elif isinstance(value, Decimal):
        kind = "NUMERIC"
    elif isinstance(value, datetime):
        kind = "TIMESTAMP"
    elif isinstance(value, date):
        kind = "DATE"
    elif isinstance(value, bytes):
        kind = "BYTES"
    elif isinstance(value, str):
        kind = "STRING"
    else:
        raise TypeError(f"parameter @{name}: no BigQuery type for {type(value).__name__}")
    return bigquery.ScalarQueryParameter(name, kind, value)


def _json_value(value: Any) -> Any:
    """A row value as insertAll's JSON takes it (TIMESTAMP and DATE as ISO 8601 text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def is_concurrent_dml(error: Exception) -> bool:
    """Whether a DML job failed only because of other DML on its table (queue full, or a serialization conflict).

    Both are documented as transient: wait and resubmit
    (https://cloud.google.com/bigquery/docs/data-manipulation-language#update_delete_merge_dml_concurrency,
    https://cloud.google.com/bigquery/docs/troubleshoot-quotas).
    """
    text = str(getattr(error, "message", None) or error)
    return any(marker in text for marker in _CONCURRENT_DML_MARKERS)


def is_rate_limited(error: Exception) -> bool:
    """Whether BigQuery refused for rate (403/429 with reason rateLimitExceeded)."""
    if not isinstance(error, google_errors.Forbidden | google_errors.TooManyRequests):
        return False
    reasons = {str(item.get("reason")) for item in getattr(error, "errors", None) or [] if isinstance(item, dict)}
    return bool(reasons & _RATE_LIMIT_REASONS) or isinstance(error, google_errors.TooManyRequests)


class BigQueryWarehouse(Warehouse):
    """Parameterized queries on one project; every call waits for its job and reads all rows."""

    def __init__(
        self,
        client: bigquery.Client,
        *,
        location: str | None = None,
        timeout_seconds: float = 120.0,
        max_attempts: int = 5,
        base_backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._location = location
        self._timeout = timeout_seconds
        self._max_attempts = max_attempts
        self._base_backoff = base_backoff_seconds
        self._sleep = sleep

    def _with_backoff(self, what: str, call: Callable[[], T]) -> T:
        """Run `call`, retrying with jittered exponential backoff while BigQuery refuses for rate or a concurrent update."""

        def attempt() -> T:
            try:
                return call()
            except google_errors.GoogleAPIError as error:
                if is_rate_limited(error) or is_concurrent_dml(error):
                    raise RateLimited(f"{what}: {getattr(error, 'message', None) or error}"[:500]) from error
                raise

        with google_errors_as_ours(what):
            return with_rate_limit_backoff(
                what,
                attempt,
                attempts=self._max_attempts,
                base_backoff_seconds=self._base_backoff,
                max_backoff_seconds=30.0,
                sleep=self._sleep,
            )

    def _run(self, sql: str, params: dict[str, Any] | None) -> list[Row]:
        config = bigquery.QueryJobConfig(query_parameters=[query_parameter(name, value) for name, value in (params or {}).items()])

        def call() -> list[Row]:
            # job_retry=None: rate limits are retried here, once, with our bounded backoff.
            job = self._client.query(sql, job_config=config, location=self._location, job_retry=None, timeout=self._timeout)
            return [dict(row.items()) for row in job.result(timeout=self._timeout)]

        return self._with_backoff("bigquery query", call)

    def ping(self) -> None:
        self._run("SELECT 1 AS ok", None)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        return self._run(sql, params)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._run(sql, params)

    def append_rows(self, dataset: str, table: str, rows: list[Row]) -> None:
        """tabledata.insertAll (streaming): no job, no DML quota; rows are queryable at once.

        Streaming inserts are limited per project in bytes per second, not per table in
        statements (https://cloud.google.com/bigquery/quotas#streaming_inserts), so appends of
        many tenants at once never queue behind each other as DML on one table does
        (https://cloud.google.com/bigquery/quotas#data-manipulation-language-statements). Each
        row's insertId is a digest of its content: BigQuery drops, best effort, a row it saw
        with the same id in the last minute, so a retried call rarely appends twice.
        The Storage Write API (https://cloud.google.com/bigquery/docs/write-api) is the newer
        path with exactly-once streams; insertAll is the one every client library and the
        BigQuery emulator speak without a gRPC stream per table.
        """
        if not rows:
            return
        payload = [{name: _json_value(value) for name, value in row.items()} for row in rows]
        row_ids = [hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:64] for row in payload]
        reference = self._dataset_ref(dataset).table(table)

        def call() -> None:
            errors = self._client.insert_rows_json(reference, payload, row_ids=row_ids, timeout=self._timeout)
            if errors:
                raise BackendError(f"bigquery insertAll into {dataset}.{table} refused rows: {str(errors)[:300]}")

        self._with_backoff("bigquery insertAll", call)

    def _dataset_ref(self, dataset: str) -> bigquery.DatasetReference:
        return bigquery.DatasetReference(self._client.project, dataset)

    def dataset_exists(self, dataset: str) -> bool:
        def call() -> bool:
            try:
                self._client.get_dataset(self._dataset_ref(dataset), timeout=self._timeout)
            except google_errors.NotFound:
                return False
            return True

        return self._with_backoff("bigquery get dataset", call)

    def create_dataset(self, dataset: str) -> bool:
        definition = bigquery.Dataset(self._dataset_ref(dataset))
        if self._location:
            definition.location = self._location

        def call() -> bool:
            try:
                # exists_ok=False on purpose: the Conflict is how we learn someone else created it.
                self._client.create_dataset(definition, exists_ok=False, timeout=self._timeout)
            except google_errors.Conflict:
                return False
            return True

        return self._with_backoff("bigquery create dataset", call)

    def delete_dataset(self, dataset: str) -> None:
        self._with_backoff(
            "bigquery delete dataset",
            lambda: self._client.delete_dataset(self._dataset_ref(dataset), delete_contents=True, not_found_ok=True, timeout=self._timeout),
        )

    def table_columns(self, dataset: str, table: str) -> dict[str, str] | None:
        def call() -> dict[str, str] | None:
            try:
                found = self._client.get_table(self._dataset_ref(dataset).table(table), timeout=self._timeout)
            except google_errors.NotFound:
                return None
            return {field.name: _STANDARD_TYPES.get(field.field_type, field.field_type) for field in found.schema}

        return self._with_backoff("bigquery get table", call)

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]
