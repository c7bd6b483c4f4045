"""Builds the Google Cloud adapters (ONBOARDING_BACKEND=gcp); called by `shared.bootstrap` only.

Emulators are picked up from the standard variables: FIRESTORE_EMULATOR_HOST and
PUBSUB_EMULATOR_HOST (read by the client libraries themselves), BIGQUERY_API_ENDPOINT and
KMS_API_ENDPOINT (settings.gcp). An emulated service is reached without credentials.
"""

from __future__ import annotations

import os

import google.auth
import google.auth.exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import Request
from google.cloud import bigquery, firestore, kms, pubsub  # type: ignore[attr-defined]

from shared.adapters.gcp.bigquery_warehouse import BigQueryWarehouse
from shared.adapters.gcp.cloud_kms_key_manager import CloudKmsKeyManager
from shared.adapters.gcp.firestore_document_store import FirestoreDocumentStore
from shared.adapters.gcp.pubsub_event_bus import PubSubEventBus
from shared.config import Settings
from shared.services import Adapters, Credentials


def emulated_endpoints(settings: Settings) -> dict[str, str]:
    """Service name to emulator address, for every service configured to use one."""
    endpoints = {
        "firestore": os.environ.get("FIRESTORE_EMULATOR_HOST", ""),
        "pubsub": os.environ.get("PUBSUB_EMULATOR_HOST", ""),
        "bigquery": settings.gcp.bigquery_api_endpoint,
        "kms": settings.gcp.kms_api_endpoint,
    }
    return {name: address for name, address in endpoints.items() if address}


def credentials_check(settings: Settings) -> tuple[bool, str]:
    """Application default credentials resolve (and refresh) unless every service is emulated."""
    emulated = emulated_endpoints(settings)
    if len(emulated) == 4:
        where = ", ".join(f"{name} at {address}" for name, address in emulated.items())
        return True, f"emulator mode: no Google credentials used ({where})"
    try:
        credentials, project = google.auth.default()
        credentials.refresh(Request())  # type: ignore[no-untyped-call]
    except google.auth.exceptions.GoogleAuthError as error:
        return False, f"application default credentials unavailable: {type(error).__name__}: {error}"[:300]
    account = getattr(credentials, "service_account_email", None) or type(credentials).__name__
    detail = f"application default credentials resolved ({account}, project {project or settings.gcp.project})"
    if emulated:
        detail += f"; emulated: {', '.join(sorted(emulated))}"
    return True, detail


def bigquery_client(settings: Settings) -> bigquery.Client:
    """A BigQuery client for the project, on the emulator when BIGQUERY_API_ENDPOINT is set."""
    endpoint = settings.gcp.bigquery_api_endpoint
    if endpoint:
        return bigquery.Client(
            project=settings.gcp.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=endpoint),
        )
    return bigquery.Client(project=settings.gcp.project, location=settings.gcp.bigquery_location)


def kms_client(settings: Settings) -> kms.KeyManagementServiceClient:
    """A Cloud KMS client; REST transport to KMS_API_ENDPOINT when it is set."""
    endpoint = settings.gcp.kms_api_endpoint
    if endpoint:
        return kms.KeyManagementServiceClient(
            transport="rest",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=endpoint),
        )
    return kms.KeyManagementServiceClient()


def gcp_adapters(settings: Settings) -> Adapters:
    """Firestore documents, Pub/Sub bus, BigQuery warehouse and Cloud KMS keys for settings.gcp.project."""
    project = settings.gcp.project
    if not project:
        raise RuntimeError("the gcp backend needs a project: set GOOGLE_CLOUD_PROJECT")
    if not settings.gcp.kms_key_name:
        raise RuntimeError("the gcp backend needs a key: set ONBOARDING_KMS_KEY_NAME to projects/P/locations/L/keyRings/R/cryptoKeys/K")
    return Adapters(
        documents=FirestoreDocumentStore(firestore.Client(project=project)),
        bus=PubSubEventBus(pubsub.PublisherClient(), project),
        warehouse=BigQueryWarehouse(
            bigquery_client(settings), location=None if settings.gcp.bigquery_api_endpoint else settings.gcp.bigquery_location
        ),
        keys=CloudKmsKeyManager(kms_client(settings), settings.gcp.kms_key_name),
        credentials=Credentials(check=lambda: credentials_check(settings)),
    )
