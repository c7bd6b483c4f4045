MERGE `{dataset}.onboarding_validation_test` AS t
USING (SELECT @id AS id, @test_message AS test_message) AS s
ON t.id = s.id
WHEN NOT MATCHED THEN
  INSERT (id, test_message, created_at) VALUES (s.id, s.test_message, CURRENT_TIMESTAMP())
