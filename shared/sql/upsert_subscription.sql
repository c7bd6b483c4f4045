-- The tenant's subscription with its plan's limits (create or change plan).
MERGE `{central}.tenant_subscriptions` AS t
USING (
  SELECT @tenant_id AS tenant_id, @plan_name AS plan_name, @status AS status,
         @daily_limit AS daily_limit, @monthly_limit AS monthly_limit, @concurrent_limit AS concurrent_limit
) AS s
ON t.tenant_id = s.tenant_id
WHEN MATCHED THEN
  UPDATE SET plan_name = s.plan_name, status = s.status, daily_limit = s.daily_limit,
             monthly_limit = s.monthly_limit, concurrent_limit = s.concurrent_limit,
             updated_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN
  INSERT (tenant_id, plan_name, status, daily_limit, monthly_limit, concurrent_limit, started_at, updated_at)
  VALUES (s.tenant_id, s.plan_name, s.status, s.daily_limit, s.monthly_limit, s.concurrent_limit,
          CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP())
