-- The tenant's profile row; a new row starts with the given status, an existing one keeps its own.
MERGE `{central}.tenant_profiles` AS t
USING (SELECT @tenant_id AS tenant_id, @company_name AS company_name, @admin_email AS admin_email) AS s
ON t.tenant_id = s.tenant_id
WHEN MATCHED THEN
  UPDATE SET company_name = s.company_name, admin_email = s.admin_email, updated_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN
  INSERT (tenant_id, company_name, admin_email, status, created_at, updated_at)
  VALUES (s.tenant_id, s.company_name, s.admin_email, @status, CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP())
