"""Every port operation declares its IAM permissions, citing Google's page; SQL is read for what it touches."""

from __future__ import annotations

import inspect

import pytest

from shared import sql
from shared.adapters.embedded.duckdb_warehouse import DuckdbWarehouse
from shared.adapters.embedded.local_key_manager import LocalKeyManager
from shared.adapters.embedded.sqlite_document_store import SqliteDocumentStore
from shared.adapters.embedded.sqlite_event_bus import SqliteEventBus
from shared.adapters.gcp.bigquery_warehouse import BigQueryWarehouse
from shared.adapters.gcp.cloud_kms_key_manager import CloudKmsKeyManager
from shared.adapters.gcp.firestore_document_store import FirestoreDocumentStore, _FirestoreTransaction
from shared.adapters.gcp.pubsub_event_bus import PubSubEventBus
from shared.ports import DocumentStore, EventBus, KeyManager, Transaction, Warehouse
from shared.ports.permissions import Access, CallContext, Resource, accesses, requirement

PORTS = (DocumentStore, Transaction, EventBus, KeyManager, Warehouse)
CENTRAL, TENANT = "tenant_platform", "customer_123"


def _operations(port: type) -> list[str]:
    return [name for name, member in inspect.getmembers(port, inspect.isfunction) if getattr(member, "__isabstractmethod__", False)]


@pytest.mark.parametrize("port", PORTS, ids=lambda port: port.__name__)
def test_every_operation_of_every_port_declares_its_permissions_with_a_google_page(port: type) -> None:
    operations = _operations(port)
    assert operations
    for name in operations:
        declared = requirement(port, name)
        assert declared.doc.startswith("https://cloud.google.com/"), (port.__name__, name)


@pytest.mark.parametrize(
    ("adapter", "port"),
    [
        (SqliteDocumentStore, DocumentStore),
        (SqliteEventBus, EventBus),
        (LocalKeyManager, KeyManager),
        (DuckdbWarehouse, Warehouse),
        (FirestoreDocumentStore, DocumentStore),
        (_FirestoreTransaction, Transaction),
        (PubSubEventBus, EventBus),
        (CloudKmsKeyManager, KeyManager),
        (BigQueryWarehouse, Warehouse),
    ],
    ids=lambda value: value.__name__,
)
def test_every_adapter_is_covered_by_its_ports_declarations(adapter: type, port: type) -> None:
    # Every public call of the adapter is a port operation, so the port's declaration is its declaration.
    public = {name for name, _ in inspect.getmembers(adapter, inspect.isfunction) if not name.startswith("_")}
    assert public - {"close", "topic_path", *_all_methods(port)} <= _local_only(adapter), adapter
    for name in _operations(port):
        assert requirement(adapter, name) is requirement(port, name)


def _all_methods(port: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(port, inspect.isfunction)}


def _local_only(adapter: type) -> set[str]:
    """The embedded bus is also the local delivery platform; those methods reach no Google API."""
    return {name for name in dir(adapter) if not name.startswith("_")} if adapter is SqliteEventBus else set()


def _job(sql_text: str, context: CallContext | None = None) -> set[Access]:
    return set(accesses(Warehouse, "execute", context or CallContext(), sql_text))


def _table(name: str) -> Resource:
    return Resource("table", name)


def test_a_merge_reads_and_writes_its_target_and_reads_its_sources() -> None:
    found = _job(sql.render("upsert_validation_row", dataset=TENANT))
    assert found == {
        Access("bigquery.jobs.create", Resource("project")),
        Access("bigquery.tables.getData", _table(f"{TENANT}.onboarding_validation_test")),
        Access("bigquery.tables.updateData", _table(f"{TENANT}.onboarding_validation_test")),
    }


def test_a_view_is_created_in_its_dataset_and_reading_it_reads_the_tables_behind_it() -> None:
    context = CallContext()
    created = _job(sql.render("create_comprehensive_view", central=CENTRAL, dataset=TENANT, tenant_id=TENANT), context)
    assert Access("bigquery.tables.create", Resource("dataset", TENANT)) in created
    assert Access("bigquery.tables.update", _table(f"{TENANT}.tenant_comprehensive_view")) in created
    assert not [access for access in created if access.permission == "bigquery.tables.getData"]
    read = _job(sql.render("read_comprehensive_view", dataset=TENANT), context)
    assert {access.resource.name for access in read if access.permission == "bigquery.tables.getData"} == {
        f"{TENANT}.tenant_comprehensive_view",
        f"{CENTRAL}.tenant_profiles_latest",  # the latest-row views over the copy, made by the bootstrap
        f"{CENTRAL}.tenant_subscriptions_latest",
        f"{CENTRAL}.tenant_usage_quotas_latest",
    }


def test_ddl_and_dataset_calls_need_their_own_permissions() -> None:
    assert Access("bigquery.tables.create", Resource("dataset", TENANT)) in _job(
        sql.statements(sql.render("tenant_tables", dataset=TENANT))[0]
    )
    dropped = _job(sql.statements(sql.render("drop_tenant_tables", dataset=TENANT))[0])
    assert Access("bigquery.tables.delete", _table(f"{TENANT}.onboarding_validation_test")) in dropped
    assert accesses(Warehouse, "dataset_exists", CallContext(), TENANT) == [Access("bigquery.datasets.get", Resource("dataset", TENANT))]
    assert {access.permission for access in accesses(Warehouse, "delete_dataset", CallContext(), TENANT)} == {
        "bigquery.datasets.delete",
        "bigquery.tables.delete",
    }


def test_firestore_pubsub_and_kms_calls_name_their_resource() -> None:
    context = CallContext()
    assert accesses(DocumentStore, "find", context, "tenants", "status", "ACTIVE") == [
        Access("datastore.entities.get", Resource("collection", "tenants")),
        Access("datastore.entities.list", Resource("collection", "tenants")),
    ]
    assert accesses(Transaction, "create", context, "api_keys", "h", {}) == [
        Access("datastore.entities.create", Resource("collection", "api_keys"))
    ]
    assert accesses(EventBus, "publish", context, "billing-events", b"{}") == [
        Access("pubsub.topics.publish", Resource("topic", "billing-events"))
    ]
    assert accesses(KeyManager, "decrypt", context, b"x", b"t") == [Access("cloudkms.cryptoKeyVersions.useToDecrypt", Resource("key"))]


def test_every_statement_we_ship_has_a_declaration() -> None:
    context = CallContext()
    names = sorted(path.stem for path in sql._DIR.glob("*.sql"))
    for name in names:
        for statement in sql.statements(sql.render(name, central=CENTRAL, dataset=TENANT, tenant_id=TENANT)):
            assert len(_job(statement, context)) >= 1, name
