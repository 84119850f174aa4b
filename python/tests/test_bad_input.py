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
