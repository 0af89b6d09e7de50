"""A second company profile made from the demo's exports: every join key and custom field renamed (the parts
rewritten in place), and a configuration naming them. Used by cs_kpis_tests/staging/test_second_profile.py
(raw, staging, xref) and cs_kpis_tests/test_second_profile_whole_build.py (every table)."""

import json
from pathlib import Path

from cs_kpis import config

CRM_RENAMES = {
    "Account": {"CSM__c": "Customer_Success_Manager__c", "Segment__c": "Tier__c",
                "CSM_Sentiment__c": "Health_Sentiment__c", "Product_Workspace_Id__c": "App_Workspace__c"},
    "Contact": {"Role__c": "Contact_Role__c"},
}
PROFILE = {
    "profile": "renamed-co",
    "reporting_currency": "USD",
    "systems": {
        "crm": {"mode": "files", "fields": {"csm": "Customer_Success_Manager__c", "segment": "Tier__c",
                                            "csm_sentiment": "Health_Sentiment__c",
                                            "product_workspace_id": "App_Workspace__c",
                                            "contact_role": "Contact_Role__c"}},
        "billing": {"mode": "files", "account_id_field": "metadata.sfdc_account_id"},
        "product": {"mode": "files"},
        "support": {"mode": "files", "account_id_field": "organization_fields.sfdc_account"},
        "nps": {"mode": "files", "account_id_field": "person_properties.crm_account"},
    },
    "product": config.DEMO_PRODUCT.as_dict(),
}


def _rewrite(folder: Path, glob: str, change) -> int:
    n = 0
    for part in sorted(folder.glob(glob)):
        body = json.loads(part.read_text())
        n += change(body)
        part.write_text(json.dumps(body))
    return n


def _rename_metadata(obj: dict) -> int:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "salesforce_account_id" in meta:
        meta["sfdc_account_id"] = meta.pop("salesforce_account_id")
        return 1
    return 0


def rename_exports(landing: Path) -> dict[str, int]:
    """Rename every join key and custom field in the landing folder's parts; returns how many were renamed."""
    renamed = {}
    for obj, renames in CRM_RENAMES.items():
        def crm(env, renames=renames):
            n = 0
            for rec in env["records"]:
                for old, new in renames.items():
                    if old in rec:
                        rec[new] = rec.pop(old)
                        n += 1
            return n
        renamed[obj] = _rewrite(landing / "crm" / obj, "*/part-*.json", crm)

    def history(env):
        # field history names the changed field by its API name: the renamed org's names
        n = 0
        for rec in env["records"]:
            if rec.get("Field") in CRM_RENAMES["Account"]:
                rec["Field"] = CRM_RENAMES["Account"][rec["Field"]]
                n += 1
        return n
    renamed["AccountHistory"] = _rewrite(landing / "crm" / "AccountHistory", "*/part-*.json", history)
    renamed["customers"] = _rewrite(landing / "billing" / "customers", "*/part-*.json",
                                    lambda env: sum(_rename_metadata(o) for o in env["data"]))
    renamed["subscriptions"] = _rewrite(landing / "billing" / "subscriptions", "*/part-*.json",
                                        lambda env: sum(_rename_metadata(o) for o in env["data"]))
    renamed["events"] = _rewrite(landing / "billing" / "events", "*/part-*.json",
                                 lambda env: sum(_rename_metadata(e["data"]["object"]) for e in env["data"]))

    def orgs(env):
        for org in env["organizations"]:
            org["organization_fields"] = {"sfdc_account": org.pop("external_id", None)}
            org["external_id"] = None
        return len(env["organizations"])
    renamed["organizations"] = _rewrite(landing / "support" / "organizations", "*/part-*.json", orgs)

    def nps(responses):
        for r in responses:
            r["person_properties"]["crm_account"] = r["person_properties"].pop("salesforce_account_id", None)
        return len(responses)
    renamed["survey_responses"] = _rewrite(landing / "nps" / "survey_responses", "*/part-*.json", nps)
    return renamed


def normalised(rows: list[tuple]) -> list[tuple]:
    """Rows to compare between two builds: doubles to 12 significant digits (a parallel sum of doubles can
    differ in its last bit from one build to the next), then sorted."""
    def value(v):
        return float(f"{v:.12g}") if isinstance(v, float) else v
    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def build_renamed_company(root: Path, landing_from: Path, select=None):
    """Copy ``landing_from`` to ``root/exports``, rename every join key and custom field in it, write a company
    file naming them, and build the assets ``select(keys)`` picks (all when None) with every state path under
    ``root``. Returns (paths by variable, the run's result, what was renamed)."""
    import shutil

    import dagster as dg
    import pytest

    from cs_kpis_tests.conftest import TEST_ENV

    paths = {name: root / relative for name, relative in TEST_ENV.items()}
    landing = root / "exports"
    shutil.copytree(landing_from, landing)
    renamed = rename_exports(landing)
    cfg = root / "company.yaml"
    cfg.write_text(json.dumps(PROFILE | {"landing_dir": "exports"}))
    with pytest.MonkeyPatch.context() as mp:
        for name, path in paths.items():
            mp.setenv(name, str(path))
        mp.setenv("CS_KPIS_CONFIG", str(cfg))
        mp.setenv("DLT_DATA_DIR", str(root / "dlt_global"))
        from cs_kpis.definitions import defs as load_defs

        defs = load_defs()
        keys = list(defs.resolve_all_asset_keys())
        assert dg.AssetKey(["landing", "exports"]) in keys and dg.AssetKey(["landing", "demo_company"]) not in keys
        if select is not None:
            keys = select(keys)
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=keys, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    return paths, result, renamed
