"""Google Cloud adapters: Firestore, Pub/Sub, BigQuery and Cloud KMS through the official clients."""
