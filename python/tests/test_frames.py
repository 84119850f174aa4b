"""DataFrames across the boundary through the Arrow PyCapsule interface, without copies."""

import pytest

import sandwich

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")


def test_frames_go_to_polars_and_pyarrow():
    df = sandwich.run("sw.frame{x = {1, 2, 3}, s = {'a', 'b', sw.null}, f = {0.5, 1.5, 2.5}}")
    assert df.shape == (3, 3) and len(df) == 3
    p = pl.DataFrame(df)
    assert p["x"].to_list() == [1, 2, 3] and p["s"].to_list() == ["a", "b", None]
    t = pa.table(df)
    assert t.num_rows == 3 and t.column("f").to_pylist() == [0.5, 1.5, 2.5]
    assert df.to_polars().equals(p)
    assert df.to_arrow().equals(t)


def test_polars_buffers_are_shared_not_copied():
    s = sandwich.Session()
    df = s.eval("sw.frame{x = {1, 2, 3, 4}}")
    a = pa.table(df).column("x").chunks[0]
    b = pa.table(df).column("x").chunks[0]
    # Two exports of the same frame point at the same memory: nothing was copied.
    assert a.buffers()[1].address == b.buffers()[1].address


def test_frames_come_in_from_polars_pyarrow_and_pandas():
    s = sandwich.Session()
    s.set("p", pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}))
    assert s.eval("p:height()") == 3
    s.set("t", pa.table({"a": [1.0, None]}))
    assert s.eval("t:column('a')[1]") == 1.0
    pd = pytest.importorskip("pandas")
    s.set("d", pd.DataFrame({"k": [1, 2]}))
    assert s.eval("d:select(sw.col('k'):sum()):column('k')[1]") == 3
    back = pl.DataFrame(s.get("p"))
    assert back.equals(pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}))
