UPDATE `{central}.tenant_profiles`
SET status = @status, updated_at = CURRENT_TIMESTAMP()
WHERE tenant_id = @tenant_id
