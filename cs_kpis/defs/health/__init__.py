"""Layer 4b: leading indicators, the customer health score, its explanations and its backtest."""
