"""Layer 4: revenue KPIs (MRR bridge, retention, cohorts) at the account and parent-account grain."""
