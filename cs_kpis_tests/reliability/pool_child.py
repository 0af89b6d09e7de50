"""One Dagster run of the raw product events asset against the instance in $DAGSTER_HOME (a subprocess
of the pool test): ``python -m cs_kpis_tests.reliability.pool_child <landing> <warehouse> <dlt dir>``."""

import sys
from pathlib import Path

import dagster as dg

from cs_kpis.defs.raw.assets import build_raw_assets
from cs_kpis.defs.raw.resources import RawDltResource
from cs_kpis_tests.reliability import pause


def main(landing: str, warehouse: str, pipelines_dir: str) -> int:
    assets = build_raw_assets(landing_dir=Path(landing), warehouse=Path(warehouse),
                              pipelines_dir=Path(pipelines_dir), systems=("product",))
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(assets, resources={"dlt": RawDltResource()}, instance=instance,
                                raise_on_error=False)
    print(result.run_id, flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    pause.install()
    sys.exit(main(*sys.argv[1:4]))
