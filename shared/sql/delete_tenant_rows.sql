-- Purge of an offboarded tenant: its rows in every central table.
DELETE FROM `{central}.tenant_usage_quotas` WHERE tenant_id = @tenant_id;
DELETE FROM `{central}.tenant_pipeline_runs` WHERE tenant_id = @tenant_id;
DELETE FROM `{central}.tenant_subscriptions` WHERE tenant_id = @tenant_id;
DELETE FROM `{central}.tenant_profiles` WHERE tenant_id = @tenant_id;
