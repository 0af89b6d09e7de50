"""A second company profile: the demo's exports rewritten with every join key and custom field renamed, and a
configuration file naming them. The pipeline, through raw, staging and the account cross-reference, must
match exactly what the demo profile gives on the original exports (the session's tiny company)."""

import json

import duckdb
import pytest

from cs_kpis import config
from cs_kpis_tests.renamed_profile import PROFILE, build_renamed_company, normalised
from cs_kpis_tests.staging.conftest import XREF_KEYS


@pytest.fixture(scope="module")
def renamed_company(tiny_company, tmp_path_factory):
    paths, result, renamed = build_renamed_company(
        tmp_path_factory.mktemp("renamed_company"), tiny_company.env.landing_dir,
        select=lambda keys: [k for k in keys if k.path[0] in ("raw", "staging", "landing") or k in XREF_KEYS])
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    return paths["CS_KPIS_WAREHOUSE"], renamed


QUERIES = {
    "accounts": "select account_id, csm_id, segment, csm_sentiment, workspace_id from staging.stg_crm__accounts "
                "order by all",
    "contacts": "select contact_id, role from staging.stg_crm__contacts order by all",
    "account_history": "select history_id, tracked_field, old_value, new_value from staging.stg_crm__account_history "
                       "order by all",
    "customers": "select customer_id, crm_account_id from staging.stg_billing__customers order by all",
    "subscriptions": "select subscription_id, crm_account_id from staging.stg_billing__subscriptions order by all",
    "organizations": "select organization_id, crm_account_id from staging.stg_support__organizations order by all",
    "nps": "select response_id, crm_account_id from staging.stg_nps__survey_responses order by all",
    "xref": "select * from marts.account_xref order by all",
    "unmatched": "select * from marts.unmatched_source_records order by all",
}


def test_the_exports_really_are_renamed(renamed_company):
    warehouse, renamed = renamed_company
    assert all(n > 0 for n in renamed.values()), renamed
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cols = {r[0] for r in con.execute("select column_name from information_schema.columns "
                                          "where table_schema = 'raw' and table_name = 'crm__accounts'").fetchall()}
        orgs = {r[0] for r in con.execute("select column_name from information_schema.columns where table_schema "
                                          "= 'raw' and table_name = 'support__organizations'").fetchall()}
    assert "customer_success_manager__c" in cols and "csm__c" not in cols
    assert "organization_fields__sfdc_account" in orgs


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_the_renamed_profile_matches_the_demo_through_staging_and_xref(tiny_company, renamed_company, name):
    warehouse, _ = renamed_company
    with tiny_company.connect() as con:
        demo = con.execute(QUERIES[name]).fetchall()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        renamed = con.execute(QUERIES[name]).fetchall()
    assert demo, f"{name}: the demo company has no rows to compare"
    assert normalised(renamed) == normalised(demo)


def test_a_bad_field_name_never_reaches_sql(tmp_path):
    bad = PROFILE | {"landing_dir": "x"}
    bad = json.loads(json.dumps(bad))
    bad["systems"]["crm"]["fields"]["csm"] = "CSM__c from raw.crm__accounts; drop table x; --"
    path = tmp_path / "company.yaml"
    path.write_text(json.dumps(bad))
    with pytest.raises(config.ConfigError, match=r"systems\.crm\.fields\.csm"):
        config.load_file(path)
