-- Today's usage-quota row: limits from the plan, usage counted from today's pipeline runs.
MERGE `{central}.tenant_usage_quotas` AS t
USING (
  SELECT @tenant_id AS tenant_id, CURRENT_DATE() AS usage_date,
         @daily_limit AS daily_limit, @monthly_limit AS monthly_limit, @concurrent_limit AS concurrent_limit,
         COUNT(r.run_id) AS pipelines_run,
         COUNTIF(r.status = 'SUCCEEDED') AS pipelines_succeeded,
         COUNTIF(r.status = 'FAILED') AS pipelines_failed
  FROM (SELECT 1 AS anchor) AS one
  LEFT JOIN `{central}.tenant_pipeline_runs` AS r
    ON r.tenant_id = @tenant_id AND DATE(r.started_at) = CURRENT_DATE()
) AS s
ON t.tenant_id = s.tenant_id AND t.usage_date = s.usage_date
WHEN MATCHED THEN
  UPDATE SET daily_limit = s.daily_limit, monthly_limit = s.monthly_limit, concurrent_limit = s.concurrent_limit,
             pipelines_run = s.pipelines_run, pipelines_succeeded = s.pipelines_succeeded,
             pipelines_failed = s.pipelines_failed, updated_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN
  INSERT (tenant_id, usage_date, daily_limit, monthly_limit, concurrent_limit,
          pipelines_run, pipelines_succeeded, pipelines_failed, updated_at)
  VALUES (s.tenant_id, s.usage_date, s.daily_limit, s.monthly_limit, s.concurrent_limit,
          s.pipelines_run, s.pipelines_succeeded, s.pipelines_failed, CURRENT_TIMESTAMP())
