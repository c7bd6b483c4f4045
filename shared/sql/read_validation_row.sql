SELECT id, test_message, created_at FROM `{dataset}.onboarding_validation_test` WHERE id = @id
