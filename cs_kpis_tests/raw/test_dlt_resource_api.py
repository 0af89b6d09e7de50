"""RawDltResource uses dagster-dlt's public API only (issue 17 item 4): it used to subclass DagsterDltResource and
override its private ``_run`` and ``_extract_table_schema_metadata``, which break silently on an upgrade."""

import inspect

from dagster_dlt import DagsterDltResource

from cs_kpis.defs.raw import resources
from cs_kpis.sources import pipelines


def test_raw_dlt_resource_overrides_no_private_dagster_dlt_method():
    assert not issubclass(resources.RawDltResource, DagsterDltResource)
    own = {name for name in vars(resources.RawDltResource) if not name.startswith("__")}
    private_of_dagster_dlt = {name for name, value in vars(DagsterDltResource).items()
                              if name.startswith("_") and not name.startswith("__") and callable(value)}
    assert {"_run", "_extract_table_schema_metadata"} <= private_of_dagster_dlt  # what it used to override
    assert not own & private_of_dagster_dlt, own & private_of_dagster_dlt
    assert {"run", "extract_resource_metadata"} <= own


def test_local_dlt_state_is_reset_in_one_place():
    # the raw assets and the pipelines CLI reset the local dlt state with the same function
    assert "reset_local_state(dlt_pipeline)" in inspect.getsource(resources.RawDltResource.run)
    assert resources.reset_local_state is pipelines.reset_local_state
    assert "drop_pending_packages" not in inspect.getsource(resources)
