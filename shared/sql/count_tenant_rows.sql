-- Rows per central table for one tenant (used by invariant checks).
SELECT
  (SELECT COUNT(*) FROM `{central}.tenant_profiles` WHERE tenant_id = @tenant_id) AS profiles,
  (SELECT COUNT(*) FROM `{central}.tenant_subscriptions` WHERE tenant_id = @tenant_id) AS subscriptions,
  (SELECT COUNT(*) FROM `{central}.tenant_usage_quotas` WHERE tenant_id = @tenant_id) AS quotas,
  (SELECT COUNT(*) FROM `{central}.tenant_pipeline_runs`
     WHERE tenant_id = @tenant_id AND pipeline_name = 'onboarding_validation') AS validation_runs
