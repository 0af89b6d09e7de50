"""``python -m cs_kpis.check``: is this setup ready for a run? Answers in seconds, before a long run.

It validates the company configuration (CS_KPIS_CONFIG; without it, the built-in demo profile), then, for
each system not turned off:

- files mode: reads the landing folder's layout (docs/LANDING.md) and parses a sample part of every entity
  on the first (snapshot) extract day; for systems with a join key or custom fields, checks that the
  sample's records carry the configured field names;
- api mode: reads the system's credentials (environment or .dlt/secrets.toml, never the config file) and
  makes one cheap authenticated call (one record).

It prints one line per system, ``ok`` or the problem and its fix, and exits 1 on any problem (2 when the
configuration itself is invalid). It never writes anything: not the landing folder, not the warehouse.
Secrets are never printed.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cs_kpis import config as company
from cs_kpis import settings, tuning
from cs_kpis.defs.landing.manifest import (
    SYSTEM_ENTITIES,
    manifest_problems,
    problems_text,
    try_read_manifest,
)

TIMEOUT_SECONDS = 10.0


@dataclass
class Line:
    name: str
    ok: bool
    text: str
    fix: str = ""

    def render(self) -> str:
        if self.ok:
            return f"{self.name:<8} ok      {self.text}"
        return f"{self.name:<8} PROBLEM {self.text}" + (f" -> fix: {self.fix}" if self.fix else "")


# ------------------------------------------------------------------------------------------- files mode

def _records(system: str, entity: str, body: Any) -> list[Any]:
    """The records of one part, per the entity's envelope (docs/LANDING.md); raises on a wrong envelope."""
    if system == "crm":
        return body["records"]
    if system == "billing":
        return body["data"]
    if system == "support":
        return body[entity.split("/")[1]]
    if system == "nps":
        if not isinstance(body, list):
            raise TypeError("expected a bare JSON array")
        return body
    raise ValueError(system)


def _get_path(record: Any, path: str) -> tuple[bool, Any]:
    node = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _field_checks(cfg: company.CompanyConfig) -> dict[str, list[tuple[str, str, str]]]:
    """entity -> (config key, field path) the sample's records must carry."""
    f = cfg.systems.crm.fields
    return {
        "crm/Account": [("systems.crm.fields.csm", f.csm), ("systems.crm.fields.segment", f.segment),
                        ("systems.crm.fields.csm_sentiment", f.csm_sentiment),
                        ("systems.crm.fields.product_workspace_id", f.product_workspace_id)],
        "crm/Contact": [("systems.crm.fields.contact_role", f.contact_role)],
        "billing/customers": [("systems.billing.account_id_field", cfg.systems.billing.account_id_field)],
        "support/organizations": [("systems.support.account_id_field", cfg.systems.support.account_id_field)],
        "nps/survey_responses": [("systems.nps.account_id_field", cfg.systems.nps.account_id_field)],
    }


def check_files(system: str, cfg: company.CompanyConfig, landing: Path, first_day: str) -> Line:
    """Parse the first part of every entity of ``system`` on the snapshot day; check the configured fields."""
    sampled, records_seen = [], 0
    fields = _field_checks(cfg)
    for entity in SYSTEM_ENTITIES[system]:
        if entity == "product/events":
            days = sorted(p for p in (landing / entity).glob("*") if p.is_dir())
            parts = sorted(days[0].glob("part-*.jsonl")) if days else []
            if not parts:
                return Line(system, False, f"no {entity}/<received_day>/part-*.jsonl in {landing}",
                            "export Segment events by received day (docs/LANDING.md)")
            with parts[0].open("rb") as handle:
                first = handle.readline()
            try:
                event = json.loads(first.decode("utf-8-sig")) if first.strip() else {}
            except ValueError as exc:
                return Line(system, False, f"{parts[0]}: line 1 is not JSON ({exc})",
                            "write one JSON object per line (JSON lines)")
            if first.strip() and not {"type", "messageId"} <= set(event):
                return Line(system, False, f"{parts[0]}: line 1 has no type/messageId",
                            "export Segment's raw events (track, identify, group)")
            sampled.append(parts[0].relative_to(landing).as_posix())
            continue
        parts = sorted((landing / entity / first_day).glob("part-*.json"))
        if not parts:
            return Line(system, False, f"no part in {landing / entity / first_day}",
                        f"export {entity} for the first extract day {first_day} (docs/LANDING.md)")
        part = parts[0]
        try:
            records = _records(system, entity, json.loads(part.read_text(encoding="utf-8-sig")))
        except (ValueError, KeyError, TypeError) as exc:
            return Line(system, False, f"{part}: not the {entity} envelope ({type(exc).__name__}: {exc})",
                        f"write the vendor's API response for {entity} as is (docs/LANDING.md, Payloads)")
        if not isinstance(records, list):
            return Line(system, False, f"{part}: records are not a list", "write the vendor's API envelope")
        records_seen += len(records)
        for key, path in fields.get(entity, []):
            if records and not any(_get_path(r, path)[0] for r in records if isinstance(r, dict)):
                return Line(system, False,
                            f"{part}: no record has the field {path!r} ({key} in {cfg.source_file or 'the demo profile'})",
                            f"set {key} to the field's name in your export, or add the field to the export")
        sampled.append(part.relative_to(landing).as_posix())
    if system == "product":
        return Line(system, True, f"files: {sampled[0]} parsed")
    return Line(system, True, f"files: a part of each of {len(sampled)} entities parsed "
                f"({records_seen:,} records in the samples)")


# --------------------------------------------------------------------------------------------- api mode

SECRET_KEYS = {
    "crm": "SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN",
    "billing": "STRIPE_API_KEY",
    "support": "ZENDESK_EMAIL and ZENDESK_API_TOKEN",
    "nps": "DELIGHTED_API_KEY",
}


def _probe(system: str, api: Any) -> tuple[str, dict[str, str]]:
    """(url, headers) of one cheap authenticated request (one record) for ``system``'s API config."""
    if system == "billing":
        return f"{api.base_url.rstrip('/')}/v1/customers?limit=1", {"Authorization": f"Bearer {api.api_key}"}
    if system == "crm":
        # a query that matches nothing: authenticated, and as cheap as a query gets
        q = urllib.parse.quote("SELECT Id FROM User WHERE Id = '005000000000000AAA'")
        version = api.api_version if api.api_version.startswith("v") else f"v{api.api_version}"
        return (f"{api.instance_url.rstrip('/')}/services/data/{version}/query?q={q}",
                {"Authorization": f"Bearer {api.access_token}"})
    if system == "support":
        token = base64.b64encode(f"{api.email}/token:{api.api_token}".encode()).decode()
        return f"{api.base_url.rstrip('/')}/api/v2/ticket_metrics.json?per_page=1", {"Authorization": f"Basic {token}"}
    if system == "nps":
        token = base64.b64encode(f"{api.api_key}:".encode()).decode()
        return f"{api.base_url.rstrip('/')}/v1/survey_responses.json?per_page=1", {"Authorization": f"Basic {token}"}
    raise ValueError(system)


def check_api(system: str, api_config: Callable[[str], Any] | None = None) -> Line:
    if system not in SECRET_KEYS:
        return Line(system, False, f"{system} has no API mode (its events are read from the landing folder)",
                    f"set systems.{system}.mode to files")
    if api_config is None:
        from cs_kpis.sources.pipelines import api_config
    try:
        api = api_config(system)
    except ValueError as exc:  # the message names the missing key, never a value
        return Line(system, False, f"api: missing secret: {exc}",
                    f"export it or add it to .dlt/secrets.toml ({SECRET_KEYS[system]}); never in the config file")
    url, headers = _probe(system, api)
    host = urllib.parse.urlsplit(url).netloc
    request = urllib.request.Request(url, headers=headers | {"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            response.read(65536)
            status = response.status
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return Line(system, False, f"api: {system} refused the credentials (HTTP {exc.code} from {host})",
                        f"check {SECRET_KEYS[system]}: valid, not expired, with read access")
        return Line(system, False, f"api: HTTP {exc.code} from {host}", "retry later, or check the base URL")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Line(system, False, f"api: cannot reach {host} ({reason})",
                    "check the base URL / instance URL and the network")
    return Line(system, True, f"api: authenticated call to {host} answered HTTP {status}")


# -------------------------------------------------------------------------------------------------- main

def settings_line(cfg: company.CompanyConfig) -> Line:
    """The settings (cs_kpis/tuning.py): every value resolves; where they come from. A bad variable is named."""
    sources = []
    try:
        for key in tuning.SETTINGS:
            tuning.get(key, cfg)  # validates the variable, if set
            sources.append(tuning.source(key, cfg).split(" ")[0])
    except ValueError as exc:
        return Line("settings", False, str(exc), "fix the variable, or unset it to use the file or the default")
    counts = {where: sources.count(where) for where in ("file", "env")}
    return Line("settings", True, f"{len(sources)} settings: {counts['file']} from the file, {counts['env']} from "
                                  f"the environment, the rest default (README, 'Settings')")


def run_checks(api_config: Callable[[str], Any] | None = None) -> tuple[list[Line], int]:
    """The lines to print and the exit status (0 ok, 1 a problem, 2 an invalid configuration)."""
    try:
        cfg = company.load()
    except company.ConfigError as exc:
        return [Line("config", False, str(exc), "fix the key named above (template: examples/company.yaml)")], 2
    lines = [Line("config", True, company.describe(cfg)
                  + f"; modes: {', '.join(f'{s}={m}' for s, m in cfg.systems.modes().items())}"),
             settings_line(cfg)]
    files_systems = cfg.enabled("files")
    first_day = None
    if files_systems:
        landing = settings.landing_dir()
        manifest, error = try_read_manifest(landing) if landing.is_dir() else (None, None)
        problems = manifest_problems(landing, manifest, systems=files_systems, manifest_error=error,
                                     fx_rates=cfg.fx.rates_file(landing))
        text = problems_text(landing, problems)
        if text and cfg.is_demo and (problems["missing_folder"] or not any(landing.iterdir())):
            lines.append(Line("landing", False, text, "`make run` generates the demo company there (or "
                              "python -m cs_kpis.simulator)"))
        elif text:
            lines.append(Line("landing", False, text, "run your export into this folder; it writes _manifest.json "
                              "last (docs/LANDING.md, 'For exporters')"))
        elif manifest.get("reporting_currency") and str(manifest["reporting_currency"]).upper() != cfg.reporting_currency:
            lines.append(Line("landing", False, f"{landing}/_manifest.json says reporting_currency "
                              f"{manifest['reporting_currency']!r}, the configuration {cfg.reporting_currency!r}",
                              "make them agree: the FX rates must convert into the reporting currency"))
        else:
            first_day = min(str(d) for d in manifest["extract_days"])
            lines.append(Line("landing", True, f"{landing}: {len(manifest['extract_days'])} extract day(s) from "
                              f"{first_day}" + ("" if "billing" not in files_systems
                                                   else f", FX rates {cfg.fx.rates_file(landing)} present")))
    if cfg.mode("billing") == "api" and cfg.fx.source == "csv":
        # in files mode the landing line above judged the rates file already
        fx = cfg.fx.rates_file(settings.landing_dir())
        lines.append(Line("fx", True, f"FX rates {fx} present") if fx.is_file() else
                     Line("fx", False, f"FX rates {fx} does not exist (fx.path)",
                          "write the CSV (date,currency,rate) there, or fix fx.path"))
    for system in company.SYSTEMS:
        mode = cfg.mode(system)
        if mode == "off":
            lines.append(Line(system, True, "off"))
        elif mode == "api":
            lines.append(check_api(system, api_config))
        elif first_day is None:
            lines.append(Line(system, False, "files: the landing folder is not usable (see the landing line)",
                              "fix the landing folder first"))
        else:
            lines.append(check_files(system, cfg, settings.landing_dir(), first_day))
    return lines, 0 if all(line.ok for line in lines) else 1


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m cs_kpis.check", description=__doc__.split("\n\n")[0]).parse_args(argv)
    lines, status = run_checks()
    for line in lines:
        print(line.render())
    print("all checks passed" if status == 0 else "some checks failed: fix the lines marked PROBLEM, then run again")
    return status


if __name__ == "__main__":
    sys.exit(main())
