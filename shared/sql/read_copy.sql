-- The latest copied rows of one tenant: profile and subscription, and its most recent quota day.
SELECT
  p.company_name, p.admin_email, p.status AS profile_status,
  s.plan_name, s.status AS subscription_status, s.daily_limit, s.monthly_limit, s.concurrent_limit,
  q.usage_date, q.daily_limit AS quota_daily_limit, q.monthly_limit AS quota_monthly_limit,
  q.concurrent_limit AS quota_concurrent_limit, q.pipelines_run_today, q.pipelines_succeeded_today,
  q.pipelines_failed_today, q.pipelines_run_month, q.concurrent_pipelines_running, q.max_concurrent_reached,
  q.platform_runs_today, q.platform_runs_month
FROM `{central}.tenant_profiles_latest` AS p
LEFT JOIN `{central}.tenant_subscriptions_latest` AS s ON s.tenant_id = p.tenant_id
LEFT JOIN (
  SELECT * FROM `{central}.tenant_usage_quotas_latest` WHERE tenant_id = @tenant_id
  ORDER BY usage_date DESC LIMIT 1
) AS q ON q.tenant_id = p.tenant_id
WHERE p.tenant_id = @tenant_id
