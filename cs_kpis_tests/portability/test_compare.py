"""The row comparison itself: equal data compares equal, a difference of one cent or one row does not."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa

from cs_kpis_tests.portability.compare import differences


def _t(**cols):
    return pa.table(cols)


def test_equal_rows_in_another_order_are_equal():
    a = _t(k=["a", "b"], v=[Decimal("1.50"), Decimal("2.00")])
    b = _t(k=["b", "a"], v=[Decimal("2.00"), Decimal("1.50")])
    assert differences(a, b) == []


def test_one_cent_differs():
    a = _t(k=["a"], v=[Decimal("1.50")])
    b = _t(k=["a"], v=[Decimal("1.51")])
    assert differences(a, b) == ["sorted row 0: v: duckdb Decimal('1.50') / spark Decimal('1.51')"]


def test_doubles_within_1e9_are_equal_beyond_are_not():
    assert differences(_t(v=[0.1 + 0.2]), _t(v=[0.3])) == []
    assert differences(_t(v=[1.0]), _t(v=[1.0 + 1e-6]))


def test_row_count_and_columns_differ():
    assert differences(_t(v=[1, 2]), _t(v=[1])) == ["row counts differ: duckdb 2 / spark 1"]
    assert differences(_t(v=[1]), _t(w=[1]))


def test_timestamps_compare_in_utc_and_json_parsed():
    utc = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    cet = utc.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert differences(_t(t=pa.array([utc])), _t(t=pa.array([cet]))) == []
    assert differences(_t(j=['{"a": 1, "b": [1, 2]}']), _t(j=['{"b":[1,2],"a":1}'])) == []
    assert differences(_t(j=['{"a": 1}']), _t(j=['{"a": 2}']))
    assert differences(_t(d=[dt.date(2024, 1, 1)]), _t(d=[dt.date(2024, 1, 2)]))


def test_null_is_not_zero_or_empty():
    assert differences(_t(v=pa.array([None], pa.int64())), _t(v=[0]))
    assert differences(_t(v=pa.array([None], pa.string())), _t(v=[""]))


def test_spark_tests_skip_with_a_reason_when_java_is_missing(monkeypatch, tmp_path):
    from cs_kpis_tests.portability.conftest import java_problem

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert "Java is not installed" in java_problem()


def test_the_column_by_column_rows_are_the_value_by_value_definition():
    """rows() normalises and orders column by column: the same rows, types and order as normalise() and
    row_sort_key() applied to each value of each row (as rows() did before), for every kind of column."""
    import json
    import math
    from zoneinfo import ZoneInfo

    from cs_kpis_tests.portability.compare import normalise, row_sort_key, rows, value_key

    paris = ZoneInfo("Europe/Paris")
    n = 8
    table = pa.table({
        "i": pa.array([3, None, 1, 1, -2, 10**15, 0, 3], pa.int64()),
        "f": pa.array([0.1 + 0.2, math.nan, None, 1.0000001, 1.0000002, -math.inf, 2.5e-12, 0.3]),
        "d": pa.array([Decimal("1.50"), None, Decimal("-0.01"), Decimal("1.5"), Decimal(0), Decimal("2.00"),
                       Decimal("1.50"), Decimal("99.99")], pa.decimal128(10, 2)),
        "b": pa.array([True, False, None, True, False, True, False, None]),
        "s": pa.array(['{"b": [1, 2], "a": NaN}', " [1, 2.5]", "null", "a{b", "plain é \"q\"", None, "true ",
                       "{not json"]),
        "ls": pa.array(["x", "[]", None, "{}", "x", "false", "nullish", "y"], pa.large_string()),
        "day": pa.array([dt.date(2024, 1, 1), None, dt.date(1999, 12, 31), dt.date(2024, 1, 1),
                         dt.date(2024, 2, 29), dt.date(2024, 1, 2), dt.date(2024, 1, 1), dt.date(2030, 6, 1)]),
        "ts_paris": pa.array([dt.datetime(2024, 3, 31, 1, 59, tzinfo=paris), dt.datetime(2024, 3, 31, 3, 0, 0, 1,
                              tzinfo=paris), None, dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=paris),
                              dt.datetime(2024, 1, 1, tzinfo=paris), dt.datetime(2024, 1, 1, tzinfo=paris),
                              dt.datetime(2023, 12, 31, 23, 0, tzinfo=dt.UTC), dt.datetime(2024, 7, 1, 12, 0, 0,
                              500000, tzinfo=paris)], pa.timestamp("us", tz="Europe/Paris")),
        "ts_utc_ms": pa.array([dt.datetime(2024, 1, 1, 12, i, tzinfo=dt.UTC) for i in range(n)],
                              pa.timestamp("ms", tz="UTC")),
        "ts_naive": pa.array([dt.datetime(2024, 1, 1), None, dt.datetime(2024, 1, 1, 0, 0, 0, 5)] * 2
                             + [dt.datetime(2024, 5, 5, 5, 5, 5)] * 2, pa.timestamp("us")),
        "ts_naive_s": pa.array([dt.datetime(2024, 1, 1, 0, 0, i) for i in range(n)], pa.timestamp("s")),
        "lst": pa.array([[1, 2], None, [], [3], [1, 2], None, [None], [0]], pa.list_(pa.int64())),
        "st": pa.array([{"x": 1, "y": "a"}, None, {"x": None, "y": "{}"}] * 2 + [{"x": 2, "y": "b"}] * 2),
        "bin": pa.array([b"\x00\xff", None, b"", b"a"] * 2, pa.binary()),
        "i8": pa.array([1, None, 1, 2, 1, 1, 0, 1], pa.int8()),
    })
    want = sorted([[normalise(v) for v in row.values()] for row in table.to_pylist()], key=row_sort_key)
    got = rows(table)
    assert repr(got) == repr(want)
    # a str's key is json.dumps' text, as it was
    for text in ("plain é \"q\"", "", "\\", "\u2028", "{}"):
        assert value_key(text) == (2, json.dumps(text, sort_keys=True, default=str))


def test_nan_is_never_equal_to_nan_not_even_within_json_text():
    """As before the rows' shortcut (rows equal as Python lists are not compared value by value): same() takes
    no NaN as equal to another, and JSON's NaN constant is one shared object in json.loads."""
    assert differences(_t(j=['{"a": NaN}']), _t(j=['{"a": NaN}']))
    assert differences(_t(v=[float("nan")]), _t(v=[float("nan")]))
