"""Layer 0: the landing folder the source systems hand over (docs/LANDING.md)."""
