-- Keys per central table for one tenant, through the latest-row views (used by invariant checks).
SELECT
  (SELECT COUNT(*) FROM `{central}.tenant_profiles_latest` WHERE tenant_id = @tenant_id) AS profiles,
  (SELECT COUNT(*) FROM `{central}.tenant_subscriptions_latest` WHERE tenant_id = @tenant_id) AS subscriptions,
  (SELECT COUNT(*) FROM `{central}.tenant_usage_quotas_latest` WHERE tenant_id = @tenant_id) AS quotas,
  (SELECT COUNT(*) FROM `{central}.tenant_pipeline_runs_latest`
     WHERE tenant_id = @tenant_id AND pipeline_name = 'onboarding_validation') AS validation_runs
