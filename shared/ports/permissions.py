"""The IAM permissions each port operation needs on Google Cloud, and the resource each touches.

Declared on the port method (`@requires`), so one declaration covers every adapter: the
Google Cloud adapter makes exactly these API calls, and the embedded adapter stands in for
them. `make iam-check` records them while the deployed functions' handlers run and compares
them with what deploy.sh grants each function's service account.

Resources are named relative to the project: a topic by its name, a dataset or table by
`dataset` / `dataset.table`, a Firestore collection by its name, the Cloud KMS key as `key`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from sqlglot import exp

ResourceKind = Literal["project", "database", "collection", "topic", "dataset", "table", "key"]

FIRESTORE_IAM = "https://cloud.google.com/firestore/docs/security/iam#required_permissions_for_api_methods"
PUBSUB_IAM = "https://cloud.google.com/pubsub/docs/access-control#required_permissions"
KMS_IAM = "https://cloud.google.com/kms/docs/reference/permissions-and-roles#cloud_kms_permissions"
BIGQUERY_QUERY = "https://cloud.google.com/bigquery/docs/running-queries#required_permissions"
BIGQUERY_DML = "https://cloud.google.com/bigquery/docs/data-manipulation-language#required_permissions"
BIGQUERY_DDL = "https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language"
BIGQUERY_VIEWS = "https://cloud.google.com/bigquery/docs/views-intro#view_access"
BIGQUERY_DATASET_GET = "https://cloud.google.com/bigquery/docs/dataset-metadata#required_permissions"
BIGQUERY_DATASET_CREATE = "https://cloud.google.com/bigquery/docs/datasets#required_permissions"
BIGQUERY_DATASET_DELETE = "https://cloud.google.com/bigquery/docs/managing-datasets#delete-datasets"
BIGQUERY_TABLE_GET = "https://cloud.google.com/bigquery/docs/tables#required_permissions_3"
BIGQUERY_STREAMING = "https://cloud.google.com/bigquery/docs/streaming-data-into-bigquery#required_permissions"


@dataclass(frozen=True, order=True)
class Resource:
    """A Google Cloud resource, named relative to the project (see the module docstring)."""

    kind: ResourceKind
    name: str = ""


@dataclass(frozen=True, order=True)
class Access:
    """One permission used on one resource."""

    permission: str
    resource: Resource


@dataclass
class CallContext:
    """What a declaration needs beyond the call's arguments: each view created so far and the tables it reads."""

    views: dict[str, frozenset[str]] = field(default_factory=dict)


Declare = Callable[..., list[Access]]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Requirement:
    """The documentation page and the function that lists the accesses of one call."""

    doc: str
    declare: Declare


def requires(doc: str, declare: Declare) -> Callable[[F], F]:
    """Mark a port method with the accesses it needs; `declare(context, *args, **kwargs)` mirrors the method."""

    def mark(method: F) -> F:
        method.__iam__ = Requirement(doc, declare)  # type: ignore[attr-defined]
        return method

    return mark


def requirement(port: type, method: str) -> Requirement:
    """The declaration of `port.method`; LookupError if it has none (every port call must declare)."""
    for klass in port.__mro__:
        found = getattr(klass.__dict__.get(method), "__iam__", None)
        if isinstance(found, Requirement):
            return found
    raise LookupError(f"{port.__name__}.{method} declares no IAM permissions")


def accesses(port: type, method: str, context: CallContext, *args: Any, **kwargs: Any) -> list[Access]:
    """The accesses one call of `port.method` with these arguments needs."""
    return requirement(port, method).declare(context, *args, **kwargs)


# ---------------------------------------------------------------- Firestore


def collection(name: str) -> Resource:
    """A Firestore collection of the (default) database."""
    return Resource("collection", name)


def documents(*permissions: str) -> Declare:
    """A document call on `(collection, doc_id, ...)` needing `permissions` on that collection."""

    def declare(context: CallContext, collection_name: str, *args: Any, **kwargs: Any) -> list[Access]:
        return [Access(permission, collection(collection_name)) for permission in permissions]

    return declare


def transaction(context: CallContext, *args: Any, **kwargs: Any) -> list[Access]:
    """beginTransaction and rollback need datastore.databases.get; the commit's writes declare their own."""
    return [Access("datastore.databases.get", Resource("database", "(default)"))]


# ---------------------------------------------------------------- Pub/Sub and Cloud KMS


def publish(context: CallContext, topic: str, *args: Any, **kwargs: Any) -> list[Access]:
    """projects.topics.publish needs pubsub.topics.publish on the topic."""
    return [Access("pubsub.topics.publish", Resource("topic", topic))]


def key_use(permission: str) -> Declare:
    """An encrypt or decrypt with the configured CryptoKey."""

    def declare(context: CallContext, *args: Any, **kwargs: Any) -> list[Access]:
        return [Access(permission, Resource("key"))]

    return declare


def nothing(context: CallContext, *args: Any, **kwargs: Any) -> list[Access]:
    """A call that reaches no Google API (it answers from what the adapter already holds)."""
    return []


# ---------------------------------------------------------------- BigQuery

_JOB = Access("bigquery.jobs.create", Resource("project"))


def dataset(permission: str) -> Declare:
    """A call on `(dataset, ...)` needing `permission` on that dataset."""

    def declare(context: CallContext, dataset_name: str, *args: Any, **kwargs: Any) -> list[Access]:
        return [Access(permission, Resource("dataset", dataset_name))]

    return declare


def create_dataset(context: CallContext, dataset_name: str) -> list[Access]:
    """datasets.insert needs bigquery.datasets.create on the project (the dataset does not exist yet)."""
    return [Access("bigquery.datasets.create", Resource("project"))]


def delete_dataset(context: CallContext, dataset_name: str) -> list[Access]:
    """datasets.delete with deleteContents: the dataset, and every table in it."""
    return [
        Access("bigquery.datasets.delete", Resource("dataset", dataset_name)),
        Access("bigquery.tables.delete", Resource("dataset", dataset_name)),
    ]


def table_append(context: CallContext, dataset_name: str, table: str, *args: Any, **kwargs: Any) -> list[Access]:
    """tabledata.insertAll needs bigquery.tables.updateData on the table (no job)."""
    return [Access("bigquery.tables.updateData", Resource("table", f"{dataset_name}.{table}"))]


def table_get(context: CallContext, dataset_name: str, table: str) -> list[Access]:
    """tables.get needs bigquery.tables.get on the table."""
    return [Access("bigquery.tables.get", Resource("table", f"{dataset_name}.{table}"))]


def _name(table: exp.Table) -> str:
    return f"{table.db}.{table.name}"


def _reads(statement: exp.Expr, skip: exp.Table | None, context: CallContext) -> list[Access]:
    """getData on every table the statement reads, and on the tables behind every view it reads.

    A view that is not authorized is queried with the caller's own access to its tables (BIGQUERY_VIEWS).
    """
    from sqlglot import exp

    names = {_name(table) for table in statement.find_all(exp.Table) if table.db and table is not skip}
    pending, seen = list(names), set(names)
    while pending:
        for underlying in context.views.get(pending.pop(), frozenset()):
            if underlying not in seen:
                seen.add(underlying)
                pending.append(underlying)
    return [Access("bigquery.tables.getData", Resource("table", name)) for name in sorted(seen)]


def statement_access(statement: exp.Expr, context: CallContext) -> list[Access]:
    """What one BigQuery statement needs, by kind (query, DML, DDL), besides bigquery.jobs.create."""
    from sqlglot import exp

    if isinstance(statement, exp.Merge | exp.Update | exp.Delete | exp.Insert):  # BIGQUERY_DML
        target = statement.this if isinstance(statement.this, exp.Table) else statement.find(exp.Table)
        assert isinstance(target, exp.Table)
        # UPDATE, DELETE and MERGE read the rows they change; INSERT only writes.
        read_target = [] if isinstance(statement, exp.Insert) else [Access("bigquery.tables.getData", Resource("table", _name(target)))]
        write = [Access("bigquery.tables.updateData", Resource("table", _name(target)))]
        return read_target + write + _reads(statement, target, context)
    if isinstance(statement, exp.Create):  # BIGQUERY_DDL: CREATE TABLE, CREATE VIEW
        target = statement.find(exp.Table)
        assert isinstance(target, exp.Table)
        kind = str(statement.args.get("kind") or "").upper()
        created = [Access("bigquery.tables.create", Resource("dataset", target.db))]
        if kind == "VIEW":
            reads = _reads(statement, target, context)
            context.views[_name(target)] = frozenset(access.resource.name for access in reads)
            # OR REPLACE may update an existing view: bigquery.tables.update on it.
            replace = [Access("bigquery.tables.update", Resource("table", _name(target)))] if statement.args.get("replace") else []
            return created + replace
        return created + _reads(statement, target, context)
    if isinstance(statement, exp.Drop):  # BIGQUERY_DDL: DROP TABLE
        target = statement.find(exp.Table)
        assert isinstance(target, exp.Table)
        return [
            Access("bigquery.tables.delete", Resource("table", _name(target))),
            Access("bigquery.tables.get", Resource("table", _name(target))),
        ]
    if isinstance(statement, exp.Alter):  # BIGQUERY_DDL: ALTER TABLE (rename or add a column, a migration)
        # https://cloud.google.com/bigquery/docs/managing-table-schemas#required_permissions
        target = statement.find(exp.Table)
        assert isinstance(target, exp.Table)
        return [
            Access("bigquery.tables.get", Resource("table", _name(target))),
            Access("bigquery.tables.update", Resource("table", _name(target))),
        ]
    if isinstance(statement, exp.Query):
        return _reads(statement, None, context)
    raise ValueError(f"no IAM declaration for a {type(statement).__name__} statement")


def sql_job(context: CallContext, sql: str, params: dict[str, Any] | None = None) -> list[Access]:
    """A query job: bigquery.jobs.create on the project, plus what each statement touches.

    sqlglot is imported here, not at the top: only the recorder calls declarations, and the
    Google Cloud mode never loads sqlglot.
    """
    import sqlglot

    found = [_JOB]
    for statement in sqlglot.parse(sql, read="bigquery"):
        if statement is not None:
            found += statement_access(statement, context)
    return found


def ping(context: CallContext) -> list[Access]:
    """SELECT 1 reads no table: bigquery.jobs.create only."""
    return [_JOB]
