-- The tables of an orphan tenant dataset, dropped only when onboarding was asked to recreate them.
DROP TABLE IF EXISTS `{dataset}.onboarding_validation_test`;
