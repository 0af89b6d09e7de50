"""Text from data is escaped where it reaches HTML: account, CSM and segment names that carry markup show as
text in the KPI report, never as elements (issue 16: hostile names)."""

import duckdb

from cs_kpis.defs.reports import assets, render
from cs_kpis_tests.reports.fixtures import build_warehouse, build_worklist

HOSTILE = '<img src=x onerror="alert(1)">'
SEGMENT = "SMB<script>alert(2)</script>"


def test_hostile_names_are_escaped_in_the_report(tmp_path):
    path = build_warehouse(tmp_path / "wh.duckdb")
    with duckdb.connect(path) as con:
        con.execute("update marts.accounts set account_name = ? where account_id = 'a3'", [HOSTILE])
        con.execute("update staging.stg_crm__users set user_name = ? where user_id = 'u2'", [HOSTILE])
        for schema, table in con.execute("select table_schema, table_name from information_schema.columns "
                                         "where column_name = 'segment'").fetchall():
            con.execute(f"update {schema}.{table} set segment = ? where segment = 'SMB'", [SEGMENT])
        for schema, table in con.execute("select table_schema, table_name from information_schema.columns "
                                         "where column_name = 'account_name' and table_schema <> 'marts'").fetchall():
            con.execute(f"update {schema}.{table} set account_name = ? where account_id = 'a3'", [HOSTILE])
        build_worklist(con)  # the worklist reads the names from marts.accounts and staging.stg_crm__users
    with duckdb.connect(path, read_only=True) as con:
        data = assets.load_report_data(con)
    page = render.render_report(data)
    assert SEGMENT in data.segments  # the hostile segment is in the report's data ...
    assert "<script>alert(2)" not in page and HOSTILE not in page  # ... but never as markup
    assert "SMB&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
