"""The bad-input campaign from Python (lua/tests/all/bad_input.rs has it from Lua): nonsense
is a ConfigError naming the function and the option, never accepted in silence, never a
panic; and what the exception says includes the causes the command line prints."""

import math

import pytest

import sandwich

LUA_CASES = [
    ("sw.frame{a = {1, nil, 3}}", "position 2"),
    ("sw.json.encode{1, 2, x = 3}", "not both"),
    ("sw.frame{a = {1, 2}}:filter(sw.col('a') == 1)", "boolean"),
    ("sw.frame{a = {1, 2}}:head('3')", "an integer"),
    ("sw.concat{sw.frame{a = {1}}, sw.frame{a = {1}}:lazy()}", "a mix"),
    ("sw.metrics.bt_ratings(sw.frame{worker = {'w'}, left = {'a'}, right = {'b'}, label = {'a'}}, {level = 2})", "level"),
]


@pytest.mark.parametrize("code,want", LUA_CASES, ids=[c[0][:40] for c in LUA_CASES])
def test_lua_nonsense_is_a_config_error(code, want):
    with pytest.raises(sandwich.ConfigError, match=want):
        sandwich.run(code)


def test_python_calls_get_the_cores_range_errors(tmp_path):
    with pytest.raises(sandwich.ConfigError, match="hidden_size"):
        sandwich.model.new(arch="bert", vocab_size=10, hidden_size=0)
    with pytest.raises(sandwich.ConfigError, match="rope_theta"):
        sandwich.model.new(arch="llama", vocab_size=10, rope_theta=math.nan)
    scores = sandwich.frame({"truth": [1, 0], "score": [math.nan, 0.5]})
    with pytest.raises(sandwich.ConfigError, match="brier"):
        sandwich.metrics.brier(scores)
    with pytest.raises(sandwich.ConfigError, match="a directory"):
        sandwich.read_json(tmp_path)


def test_a_corrupt_file_is_an_error_with_its_cause(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(sandwich.DataError) as e:
        sandwich.read_json(bad)
    # The cause (polars' own words) is part of the message, as on the command line.
    assert "bad.jsonl" in str(e.value) and "caused by" in str(e.value)


def _public_functions():
    """Every generated function of the API (mirroring `sw`), by qualified name."""
    import inspect

    modules = {"sandwich": sandwich}
    for name in ("aggregate", "agreement", "chart", "metrics", "model", "overseers", "tasks", "train"):
        modules[f"sandwich.{name}"] = getattr(sandwich, name)
    out = []
    for prefix, module in modules.items():
        for name, f in sorted(vars(module).items()):
            if name.startswith("_") or not inspect.isfunction(f):
                continue
            # Those generated from the Lua pages (not helpers a module imports).
            home = "sandwich._functions" if prefix == "sandwich" else module.__name__
            if f.__module__ == home:
                out.append((f"{prefix}.{name}", f))
    return out


def test_the_campaign_from_python(tmp_path):
    """Each API function called with each bad argument (positionally and as an unknown
    keyword): every failure is a SandwichError or a TypeError with a message — never a Rust
    panic (pyo3's PanicException is a BaseException that `except Exception` misses), never an
    internal error."""
    frame = sandwich.frame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    bad = [None, 0, -1, 1.5, math.nan, math.inf, "", str(tmp_path / "no" / "such" / "x"), True,
           [], [1, None, 3], {"x": 1}, {"a": {"f": 1}}, object(), frame]
    functions = _public_functions()
    assert len(functions) >= 45, [n for n, _ in functions]
    calls = 0
    for name, f in functions:
        for b in bad:
            for args, kwargs in (((b,), {}), ((frame, b), {}), ((frame,), {"no_such_option": b})):
                calls += 1
                try:
                    f(*args, **kwargs)
                except (sandwich.SandwichError, TypeError, ValueError) as e:
                    assert str(e), f"{name}{args}: an empty message"
                    assert "internal error" not in str(e), f"{name}{args}: {e}"
                except BaseException as e:  # noqa: BLE001 - what the campaign is looking for
                    pytest.fail(f"{name}{args}{kwargs}: {type(e).__name__}: {e}")
    assert calls > 1500
