-- Two attempts of the dataset step that ran at once can both write the validation row (one
-- streamed, one by MERGE). Whichever wrote last sees both in its read back and keeps the earliest:
-- the streamed row carries the step's first start, so the row removed is the MERGE's, never one
-- still in the streaming buffer (https://cloud.google.com/bigquery/docs/data-manipulation-language#limitations).
DELETE FROM `{dataset}.onboarding_validation_test`
WHERE id = @id AND created_at > (SELECT MIN(created_at) FROM `{dataset}.onboarding_validation_test` WHERE id = @id)
