-- The tenant's own view: profile, subscription limits and today's usage, each read from the latest row
-- of the central copy. Usage comes from the tenant's latest quota day: today's counts if that day is
-- today (zero otherwise), the month's if it is in this month, the runs in progress whatever its day.
-- quota_status is EXCEEDED once admission would refuse a run: the tenant's own runs (all runs but the
-- platform's) at the daily or monthly limit, or as many runs in progress as the concurrent limit.
CREATE OR REPLACE VIEW `{dataset}.tenant_comprehensive_view` AS
WITH latest AS (
  SELECT * FROM `{central}.tenant_usage_quotas_latest` WHERE tenant_id = '{tenant_id}'
  ORDER BY usage_date DESC LIMIT 1
), usage AS (
  SELECT
    tenant_id,
    IF(usage_date = CURRENT_DATE(), pipelines_run_today, 0) AS run_today,
    IF(usage_date = CURRENT_DATE(), pipelines_succeeded_today, 0) AS succeeded_today,
    IF(usage_date = CURRENT_DATE(), pipelines_failed_today, 0) AS failed_today,
    IF(usage_date = CURRENT_DATE(), pipelines_run_today - COALESCE(platform_runs_today, 0), 0) AS charged_today,
    IF(DATE_TRUNC(usage_date, MONTH) = DATE_TRUNC(CURRENT_DATE(), MONTH),
       COALESCE(pipelines_run_month, pipelines_run_today) - COALESCE(platform_runs_month, 0), 0) AS charged_month,
    COALESCE(concurrent_pipelines_running, 0) AS running
  FROM latest
)
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
  COALESCE(q.run_today, 0) AS pipelines_run_today,
  COALESCE(q.succeeded_today, 0) AS pipelines_succeeded_today,
  COALESCE(q.failed_today, 0) AS pipelines_failed_today,
  CASE
    WHEN COALESCE(q.charged_today, 0) >= s.daily_limit OR COALESCE(q.charged_month, 0) >= s.monthly_limit
      OR COALESCE(q.running, 0) >= s.concurrent_limit THEN 'EXCEEDED'
    ELSE 'AVAILABLE'
  END AS quota_status,
  ROUND(SAFE_DIVIDE(COALESCE(q.run_today, 0) * 100.0, s.daily_limit), 1) AS daily_usage_percent
FROM `{central}.tenant_profiles_latest` AS p
JOIN `{central}.tenant_subscriptions_latest` AS s ON s.tenant_id = p.tenant_id
LEFT JOIN usage AS q ON q.tenant_id = p.tenant_id
WHERE p.tenant_id = '{tenant_id}'
