-- One pipeline run, keyed by run_id so a redelivery records it once.
MERGE `{central}.tenant_pipeline_runs` AS t
USING (SELECT @run_id AS run_id, @tenant_id AS tenant_id, @pipeline_name AS pipeline_name, @status AS status) AS s
ON t.run_id = s.run_id
WHEN NOT MATCHED THEN
  INSERT (run_id, tenant_id, pipeline_name, status, started_at, finished_at)
  VALUES (s.run_id, s.tenant_id, s.pipeline_name, s.status, CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP())
