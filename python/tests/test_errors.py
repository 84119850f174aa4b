"""Errors map to sandwich's exception classes and name what was wrong."""

import pytest

import sandwich


def test_bad_arguments_are_config_errors():
    with pytest.raises(sandwich.ConfigError, match="sw.aggregate.dawid_skene"):
        sandwich.run("sw.aggregate.dawid_skene(sw.frame{task = {'a'}, worker = {'w'}, label = {'x'}}, {n_iter = 'many'})")


def test_missing_files_are_data_errors():
    with pytest.raises(sandwich.DataError, match="no/such.csv"):
        sandwich.read_csv("no/such.csv")


def test_model_errors():
    with pytest.raises(sandwich.ModelError, match="model.load"):
        sandwich.model.load("no/such/dir")


def test_every_error_is_a_sandwich_error_and_lua_errors_keep_their_message():
    assert issubclass(sandwich.ConfigError, sandwich.SandwichError)
    with pytest.raises(sandwich.SandwichError, match="boom"):
        sandwich.run("error('boom')")
    assert issubclass(sandwich.Interrupted, KeyboardInterrupt)


def test_unconvertible_values_are_type_errors():
    with pytest.raises(TypeError, match="cannot pass"):
        sandwich.Session().set("x", object())


def test_a_function_called_from_python_fails_without_a_bare_lua_traceback():
    with pytest.raises(sandwich.ConfigError) as e:
        sandwich.aggregate.dawid_skene(sandwich.frame({"task": ["a"], "worker": ["w"], "label": ["x"]}), n_iter=-1)
    assert "n_iter" in str(e.value) and "traceback" not in str(e.value)
    # An error inside Lua code keeps the frames that locate it.
    with pytest.raises(sandwich.SandwichError, match=r"(?s)deep.*in local 'f'"):
        sandwich.run("local function f() error('deep') end\nf()")
