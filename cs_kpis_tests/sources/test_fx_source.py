"""The FX rate source named in the company configuration (`fx`): the landing's reference/fx_rates.csv by
default, or a CSV anywhere (`source: csv`, `path`); validated with errors naming the key and the file."""

import json
import shutil
from pathlib import Path

import pytest

from cs_kpis import config
from cs_kpis.defs.landing.manifest import manifest_problems, read_manifest
from cs_kpis.sources.common.landing import read_fx_currencies
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.sources.landing_builder import tiny_company


def _write(tmp_path: Path, fx: dict | None) -> Path:
    data = {"profile": "fx-co", "landing_dir": "exports", "product": config.DEMO_PRODUCT.as_dict()}
    if fx is not None:
        data["fx"] = fx
    path = tmp_path / "cfg" / "company.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_default_is_the_landing_reference_file(tmp_path):
    cfg = config.load_file(_write(tmp_path, None))
    assert cfg.fx.rates_file(cfg.landing_dir) == tmp_path / "cfg" / "exports" / "reference" / "fx_rates.csv"
    legacy = config.load_file(_write(tmp_path, {"source": "files"}))  # the first template's spelling
    assert legacy.fx.source == "landing"


def test_a_csv_path_is_relative_to_the_configuration_file(tmp_path):
    cfg = config.load_file(_write(tmp_path, {"source": "csv", "path": "rates/daily.csv"}))
    assert cfg.fx.rates_file(cfg.landing_dir) == tmp_path / "cfg" / "rates" / "daily.csv"


@pytest.mark.parametrize(("fx", "message"), [
    ({"source": "csv"}, r"fx: .*source csv needs path"),
    ({"source": "landing", "path": "x.csv"}, r"fx: .*path is only read with source: csv"),
    ({"source": "csv", "path": "rates.xlsx"}, r"fx\.path: .*not a \.csv file"),
    ({"source": "ecb"}, r"fx\.source"),
])
def test_bad_fx_configuration_names_the_key_and_file(tmp_path, fx, message):
    path = _write(tmp_path, fx)
    with pytest.raises(config.ConfigError, match=rf"{path}: {message}"):
        config.load_file(path)


def test_billing_loads_the_rates_from_the_configured_csv(tmp_path, loader):
    landing = write_landing(tmp_path / "landing", tiny_company())
    elsewhere = tmp_path / "treasury" / "rates.csv"
    elsewhere.parent.mkdir()
    shutil.move(landing / "reference" / "fx_rates.csv", elsewhere)
    text = elsewhere.read_text()
    assert "EUR" in text

    # the landing folder has no reference file now: the check names the configured CSV, then passes with it
    manifest = read_manifest(landing)
    default = manifest_problems(landing, manifest, systems=["billing"])
    assert default["missing_fx_rates"] == [str(landing / "reference" / "fx_rates.csv")]
    missing = manifest_problems(landing, manifest, systems=["billing"], fx_rates=tmp_path / "nope.csv")
    assert missing["missing_fx_rates"] == [str(tmp_path / "nope.csv")]
    assert manifest_problems(landing, manifest, systems=["billing"], fx_rates=elsewhere)["missing_fx_rates"] == []

    loader.run("billing", landing, fx_rates_path=elsewhere)
    rows = loader.query("select count(*), count(distinct currency) from raw.billing__fx_rates")[0]
    assert rows == (len(text.strip().splitlines()) - 1, 3)
    # the known currencies (others are quarantined) come from the same file
    assert read_fx_currencies(landing, elsewhere) == {"usd", "eur", "gbp"}
    assert read_fx_currencies(landing) is None  # the default file is gone: the check would be off
