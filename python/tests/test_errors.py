"""Errors map to sandwich's exception classes and name what was wrong."""

import pytest

import sandwich


def test_bad_arguments_are_config_errors():
    with pytest.raises(sandwich.ConfigError, match="sw.aggregate.dawid_skene"):
        sandwich.run("sw.aggregate.dawid_skene(sw.frame{task = {'a'}, worker = {'w'}, label = {'x'}}, {n_iter = 'many'})")


def test_missing_files_are_data_errors():
    with pytest.raises(sandwich.DataError, match="no/such.csv"):
        sandwich.read_csv("no/such.csv")


def test_the_class_comes_from_the_kind_of_error_not_the_words(tmp_path):
    # A path that is no checkpoint directory is a bad argument, though the name says "model".
    with pytest.raises(sandwich.ConfigError, match="model.load.*not a directory"):
        sandwich.model.load("no/such/dir")
    with pytest.raises(sandwich.ConfigError, match="model.new"):
        sandwich.model.new(arch="nope")
    # Weights that cannot be read as tensors are a model error.
    task = sandwich.tasks.builtin("sentiment", n=16, seed=1)
    sandwich.tasks.tokenizer(task, tmp_path / "tok")
    m = sandwich.model.new(arch="bert", tokenizer=str(tmp_path / "tok"), hidden_size=8, layers=1,
                           heads=2, num_labels=2, seed=1)
    m.save(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(sandwich.ModelError):
        sandwich.model.load(tmp_path / "ckpt")


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
