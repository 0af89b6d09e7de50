"""Pure dlt sources, one package per source system. No Dagster imports below this folder."""
