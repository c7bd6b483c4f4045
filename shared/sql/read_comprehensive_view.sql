SELECT * FROM `{dataset}.tenant_comprehensive_view`
