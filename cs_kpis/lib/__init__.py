"""Shared building blocks for the model layers: SQL-file assets and check factories."""
