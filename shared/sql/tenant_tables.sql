-- Tables inside each tenant's own dataset.
CREATE TABLE IF NOT EXISTS `{dataset}.onboarding_validation_test` (
  id STRING NOT NULL,
  test_message STRING,
  created_at TIMESTAMP NOT NULL
);
