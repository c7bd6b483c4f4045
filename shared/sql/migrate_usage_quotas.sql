-- tenant_usage_quotas as first created (pipelines_run, pipelines_succeeded, pipelines_failed) to the columns
-- of the system it replaces. Renames are metadata changes: no row is rewritten, so no DML quota is spent and
-- rows still in the streaming buffer are no obstacle
-- (https://cloud.google.com/bigquery/docs/managing-table-schemas#change_a_columns_name). Added columns are
-- NULLABLE (https://cloud.google.com/bigquery/docs/managing-table-schemas#add_columns); older rows read
-- them as NULL, and the views COALESCE them to zero.
ALTER TABLE `{central}.tenant_usage_quotas` RENAME COLUMN pipelines_run TO pipelines_run_today;
ALTER TABLE `{central}.tenant_usage_quotas` RENAME COLUMN pipelines_succeeded TO pipelines_succeeded_today;
ALTER TABLE `{central}.tenant_usage_quotas` RENAME COLUMN pipelines_failed TO pipelines_failed_today;
ALTER TABLE `{central}.tenant_usage_quotas` ADD COLUMN IF NOT EXISTS pipelines_run_month INT64;
ALTER TABLE `{central}.tenant_usage_quotas` ADD COLUMN IF NOT EXISTS concurrent_pipelines_running INT64;
ALTER TABLE `{central}.tenant_usage_quotas` ADD COLUMN IF NOT EXISTS max_concurrent_reached INT64;
ALTER TABLE `{central}.tenant_usage_quotas` ADD COLUMN IF NOT EXISTS platform_runs_today INT64;
ALTER TABLE `{central}.tenant_usage_quotas` ADD COLUMN IF NOT EXISTS platform_runs_month INT64
