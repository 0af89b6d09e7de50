"""The price arithmetic, the composition of discounts, the parse of Stripe's expanded discounts
(defs/marts/sql/parts/) and the zero-decimal currencies
(defs/staging/sql/parts/) are written once and included by every model and check that needs them: no copy
can drift from the others."""

from pathlib import Path

import pytest

from cs_kpis.defs.marts.checks import HISTORY_MATCHES_INVOICES, history_check_sql
from cs_kpis.lib.sql import SqlModel, load_models, with_sql_parts

DEFS = Path(__file__).resolve().parents[2] / "cs_kpis" / "defs"
MARTS_SQL = DEFS / "marts" / "sql"
RULES = {
    # shared part -> a line only that part may hold, and who includes it
    "priced_quantities": ("when u.tiers_mode = 'volume' then",
                          {"subscription_states", "subscription_history_states", HISTORY_MATCHES_INVOICES}),
    "composed_discounts": ("exp(sum(case when s.multiplier > 0 then ln(s.multiplier) else 0 end))",
                           {"subscription_states", "subscription_history_states", "subscription_item_discounts"}),
    # the path of an entry's field in a list of discounts (every field is read this way, the coupon's among them)
    "expanded_discounts": ("|| '].coupon.duration')",
                           {"discount_objects", "subscription_history_states", "subscription_item_discounts"}),
}


@pytest.mark.parametrize("part", sorted(RULES))
def test_each_rule_is_written_once_and_included_where_it_is_used(part):
    line, users = RULES[part]
    written = [p.relative_to(DEFS).as_posix() for p in sorted(DEFS.rglob("*.sql")) if line in p.read_text()]
    written += [p.relative_to(DEFS).as_posix() for p in sorted(DEFS.rglob("*.py")) if line in p.read_text()]
    assert written == [f"marts/sql/parts/{part}.sql"]
    models = {m.name: m.sql for m in load_models(MARTS_SQL, "marts")}
    models[HISTORY_MATCHES_INVOICES] = history_check_sql(0.01)
    assert {name for name, sql in models.items() if line in sql} == users


def test_a_missing_part_is_named(tmp_path):
    (tmp_path / "m.sql").write_text("-- a model\nwith a as (\n    -- include: no_such_part\n)\nselect 1\n")
    with pytest.raises(ValueError, match="no_such_part"):
        SqlModel.from_file(tmp_path / "m.sql", "marts")


def test_a_part_is_indented_as_its_include_line():
    (text,) = [with_sql_parts("x as (\n    -- include: composed_discounts\n)", MARTS_SQL)]
    body = text.splitlines()[1:-1]
    assert body and all(line.startswith("    ") or not line for line in body)
    assert "-- include:" not in text


def test_the_zero_decimal_currencies_are_listed_once_and_used_by_every_billing_amount():
    line = "'BIF', 'CLP', 'DJF', 'GNF', 'JPY'"
    written = [p.relative_to(DEFS).as_posix() for p in sorted(DEFS.rglob("*")) if p.suffix in (".sql", ".py")
               and line in p.read_text()]
    assert written == ["staging/sql/parts/zero_decimal_currencies.sql"]
    models = {m.name for m in load_models(DEFS / "staging" / "sql", "staging") if line in m.sql}
    assert models == {"stg_billing__coupons", "stg_billing__invoice_items", "stg_billing__invoice_lines",
                      "stg_billing__invoices", "stg_billing__prices", "stg_billing__subscription_items"}


def test_a_proration_credit_is_told_by_one_rule_in_both_billing_models():
    rule = "description like 'Unused time%'"
    written = [p.relative_to(DEFS).as_posix() for p in sorted(DEFS.rglob("*")) if p.suffix in (".sql", ".py")
               and rule in p.read_text()]
    assert written == ["staging/sql/parts/proration_credit.sql"]
    models = {m.name for m in load_models(DEFS / "staging" / "sql", "staging") if rule in m.sql}
    assert models == {"stg_billing__invoice_items", "stg_billing__invoice_lines"}


def test_the_revenue_selections_take_their_kpi_columns_from_one_list():
    def selects_it(text: str) -> bool:  # the column selected as it is, not computed (revenue_by_grain computes it)
        return "t12_cohort_starting_mrr," in (line.strip() for line in text.splitlines())

    written = [p.relative_to(DEFS).as_posix() for p in sorted((DEFS / "kpis" / "sql").rglob("*.sql"))
               if selects_it(p.read_text())]
    assert written == ["kpis/sql/parts/revenue_kpi_columns.sql"]
    models = {m.name for m in load_models(DEFS / "kpis" / "sql", "kpis") if selects_it(m.sql)}
    assert models == {"revenue_monthly", "revenue_monthly_parent", "revenue_periods"}


def test_the_support_tickets_are_read_once_for_the_health_models():
    """A ticket's account, solved day and first-contact resolution (defs/health/sql/parts/support_tickets.sql)
    are written once: the activity, the indicators, the monthly roll-up and the activity's fingerprint read it."""
    from cs_kpis.defs.health.fingerprints import ACTIVITY_FINGERPRINT_SQL

    rules = ("case when t.status in ('solved', 'closed') then t.updated_at end",
             "case when coalesce(m.reopens, 0) = 0 and coalesce(m.replies, 0) <= 1 then 1 else 0 end",
             "x.source_system = 'support' and x.source_id = cast(t.organization_id as varchar)")
    for line in rules:
        written = [p.relative_to(DEFS).as_posix() for p in sorted(DEFS.rglob("*")) if p.suffix in (".sql", ".py")
                   and line in p.read_text()]
        assert written == ["health/sql/parts/support_tickets.sql"], line
        models = {m.name for m in load_models(DEFS / "health" / "sql", "kpis") if line in m.sql}
        assert models == {"account_activity_daily", "account_indicators_daily", "engagement_monthly"}, line
        assert sum(line in sql for sql in ACTIVITY_FINGERPRINT_SQL) == 1, line


# the parse leaves empty and missing lists out before its join to the positions (BENCHMARKS.md "Marts on the
# nightly"); without that filter it must give the same rows, on lists of every shape, as JSON and as text
_PREFILTER = "select * from discount_lists where discounts is not null and cast(discounts as varchar) <> '[]'"
_ENTRY = ('{{"id": "di_{0}", "coupon": {{"id": "C{0}", "duration": "forever", "percent_off": 10, "amount_off": null, '
          '"currency": null}}, "start": 1700000000, "end": null}}')
_LISTS = ["[]", "[ ]", None, f"[{_ENTRY.format('a')}]", f"[{_ENTRY.format('b')}, {_ENTRY.format('c')}]",
          '["di_x", "di_y"]', f'["di_x", {_ENTRY.format("d")}]', "{}", '"di_z"', "[null]"]


def _parsed(con, part_sql: str, json_typed: bool) -> list:
    lists = " union all ".join(
        f"select {i} as list_no, cast({'null' if t is None else repr(t)} as {'json' if json_typed else 'varchar'})"
        " as discounts" for i, t in enumerate(_LISTS))
    return sorted(con.execute(f"with discount_lists as ({lists}), entries as ({part_sql}) "
                              "select list_no, position, discount_id, coupon_id, percent_off from entries").fetchall())


def test_the_discount_parse_skips_empty_lists_without_losing_an_entry():
    import duckdb

    from cs_kpis.lib.sql import sql_part

    part = sql_part(MARTS_SQL, "expanded_discounts")
    assert part.count(_PREFILTER) == 1
    unfiltered = part.replace(_PREFILTER, "select * from discount_lists")
    broken = part.replace(_PREFILTER, "select * from discount_lists where json_extract_string(discounts, '$[0].id') "
                                      "is not null")  # a filter that loses the object after an id
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.dim_position as select cast(range as integer) as position from range(100)")
    for json_typed in (True, False):
        got = _parsed(con, part, json_typed)
        assert got == _parsed(con, unfiltered, json_typed)
        assert [r[:3] for r in got] == [(3, 0, "di_a"), (4, 0, "di_b"), (4, 1, "di_c"), (6, 1, "di_d")]
        assert _parsed(con, broken, json_typed) != got
