"""cs_kpis: customer-success KPIs from raw source rows to alerts, orchestrated by Dagster."""
