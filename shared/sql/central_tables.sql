-- Central tables, one statement each (BigQuery dialect). Parsed for expected columns too.
-- The analytics copy of what Firestore records (the system of record): rows are only ever
-- appended, each carrying the state document's revision (`version`) it was copied from, and
-- read through the *_latest views below, which keep each key's highest version.
CREATE TABLE IF NOT EXISTS `{central}.tenant_profiles` (
  tenant_id STRING NOT NULL,
  company_name STRING NOT NULL,
  admin_email STRING NOT NULL,
  status STRING NOT NULL,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL,
  version INT64 NOT NULL,
  recorded_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS `{central}.tenant_subscriptions` (
  tenant_id STRING NOT NULL,
  plan_name STRING NOT NULL,
  status STRING NOT NULL,
  daily_limit INT64 NOT NULL,
  monthly_limit INT64 NOT NULL,
  concurrent_limit INT64 NOT NULL,
  started_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL,
  version INT64 NOT NULL,
  recorded_at TIMESTAMP NOT NULL
);
-- One row per tenant per UTC day (its latest version): the columns of the system it replaces, plus the
-- platform's own runs (counted as usage, not charged). Columns added to an existing table by a migration
-- are NULLABLE there (BigQuery adds no REQUIRED column), hence no NOT NULL on them here either.
CREATE TABLE IF NOT EXISTS `{central}.tenant_usage_quotas` (
  tenant_id STRING NOT NULL,
  usage_date DATE NOT NULL,
  pipelines_run_today INT64 NOT NULL,
  pipelines_succeeded_today INT64 NOT NULL,
  pipelines_failed_today INT64 NOT NULL,
  pipelines_run_month INT64,
  concurrent_pipelines_running INT64,
  max_concurrent_reached INT64,
  daily_limit INT64 NOT NULL,
  monthly_limit INT64 NOT NULL,
  concurrent_limit INT64 NOT NULL,
  platform_runs_today INT64,
  platform_runs_month INT64,
  updated_at TIMESTAMP NOT NULL,
  version INT64 NOT NULL,
  recorded_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS `{central}.tenant_pipeline_runs` (
  run_id STRING NOT NULL,
  tenant_id STRING NOT NULL,
  pipeline_name STRING NOT NULL,
  status STRING NOT NULL,
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP,
  version INT64 NOT NULL,
  recorded_at TIMESTAMP NOT NULL
);
CREATE OR REPLACE VIEW `{central}.tenant_profiles_latest` AS
SELECT * FROM `{central}.tenant_profiles` WHERE TRUE
QUALIFY ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY version DESC, recorded_at DESC) = 1;
CREATE OR REPLACE VIEW `{central}.tenant_subscriptions_latest` AS
SELECT * FROM `{central}.tenant_subscriptions` WHERE TRUE
QUALIFY ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY version DESC, recorded_at DESC) = 1;
CREATE OR REPLACE VIEW `{central}.tenant_usage_quotas_latest` AS
SELECT * FROM `{central}.tenant_usage_quotas` WHERE TRUE
QUALIFY ROW_NUMBER() OVER (PARTITION BY tenant_id, usage_date ORDER BY version DESC, recorded_at DESC) = 1;
CREATE OR REPLACE VIEW `{central}.tenant_pipeline_runs_latest` AS
SELECT * FROM `{central}.tenant_pipeline_runs` WHERE TRUE
QUALIFY ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY version DESC, recorded_at DESC) = 1;
