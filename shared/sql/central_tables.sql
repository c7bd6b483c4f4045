-- Central tables, one statement each (BigQuery dialect). Parsed for expected columns too.
CREATE TABLE IF NOT EXISTS `{central}.tenant_profiles` (
  tenant_id STRING NOT NULL,
  company_name STRING NOT NULL,
  admin_email STRING NOT NULL,
  status STRING NOT NULL,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS `{central}.tenant_subscriptions` (
  tenant_id STRING NOT NULL,
  plan_name STRING NOT NULL,
  status STRING NOT NULL,
  daily_limit INT64 NOT NULL,
  monthly_limit INT64 NOT NULL,
  concurrent_limit INT64 NOT NULL,
  started_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS `{central}.tenant_usage_quotas` (
  tenant_id STRING NOT NULL,
  usage_date DATE NOT NULL,
  daily_limit INT64 NOT NULL,
  monthly_limit INT64 NOT NULL,
  concurrent_limit INT64 NOT NULL,
  pipelines_run INT64 NOT NULL,
  pipelines_succeeded INT64 NOT NULL,
  pipelines_failed INT64 NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS `{central}.tenant_pipeline_runs` (
  run_id STRING NOT NULL,
  tenant_id STRING NOT NULL,
  pipeline_name STRING NOT NULL,
  status STRING NOT NULL,
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP
);
