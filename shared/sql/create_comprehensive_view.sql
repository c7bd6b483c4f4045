-- The tenant's own view: profile, subscription limits and today's usage (zero if no row yet),
-- each read from the latest row of the central copy.
CREATE OR REPLACE VIEW `{dataset}.tenant_comprehensive_view` AS
SELECT
  p.tenant_id,
  p.company_name,
  p.admin_email,
  p.status AS tenant_status,
  s.plan_name,
  s.status AS subscription_status,
  s.daily_limit AS subscription_daily_limit,
  s.monthly_limit AS subscription_monthly_limit,
  s.concurrent_limit AS subscription_concurrent_limit,
  COALESCE(q.pipelines_run, 0) AS pipelines_run_today,
  COALESCE(q.pipelines_succeeded, 0) AS pipelines_succeeded_today,
  COALESCE(q.pipelines_failed, 0) AS pipelines_failed_today,
  CASE WHEN COALESCE(q.pipelines_run, 0) >= s.daily_limit THEN 'EXCEEDED' ELSE 'AVAILABLE' END AS quota_status,
  ROUND(SAFE_DIVIDE(COALESCE(q.pipelines_run, 0) * 100.0, s.daily_limit), 1) AS daily_usage_percent
FROM `{central}.tenant_profiles_latest` AS p
JOIN `{central}.tenant_subscriptions_latest` AS s ON s.tenant_id = p.tenant_id
LEFT JOIN `{central}.tenant_usage_quotas_latest` AS q ON q.tenant_id = p.tenant_id AND q.usage_date = CURRENT_DATE()
WHERE p.tenant_id = '{tenant_id}'
