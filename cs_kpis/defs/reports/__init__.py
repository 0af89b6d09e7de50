"""Layer 6: reports built from the warehouse (the monthly KPI report)."""
