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
