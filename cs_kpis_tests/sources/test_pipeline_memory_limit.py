"""The warehouse's DuckDB memory limit (settings.warehouse.memory_limit) reaches dlt's load connection too."""

from cs_kpis.sources.pipelines import make_pipeline


def _limit(pipeline) -> str:
    with pipeline.sql_client() as client:
        return client.execute_sql("select current_setting('memory_limit')")[0][0]


def test_the_memory_limit_reaches_the_load_connection(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_KPIS_DUCKDB_MEMORY_LIMIT", "1GB")
    limited = make_pipeline("nps", tmp_path / "w.duckdb", tmp_path / "dlt", destination="duckdb")
    assert _limit(limited) == "953.6 MiB"  # DuckDB's way of writing 1GB


def test_without_a_limit_duckdb_keeps_its_default(tmp_path, monkeypatch):
    monkeypatch.delenv("CS_KPIS_DUCKDB_MEMORY_LIMIT", raising=False)
    pipeline = make_pipeline("nps", tmp_path / "w.duckdb", tmp_path / "dlt", destination="duckdb")
    assert _limit(pipeline) != "953.6 MiB"


def test_the_spill_limits_reach_the_load_connection(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_KPIS_DUCKDB_MAX_TEMP_SIZE", "2GB")
    monkeypatch.setenv("CS_KPIS_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    pipeline = make_pipeline("nps", tmp_path / "w.duckdb", tmp_path / "dlt", destination="duckdb")
    with pipeline.sql_client() as client:
        size, folder = client.execute_sql(
            "select current_setting('max_temp_directory_size'), current_setting('temp_directory')")[0]
    assert (size, folder) == ("1.8 GiB", str(tmp_path / "spill"))  # DuckDB's way of writing 2GB
