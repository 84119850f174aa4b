"""The typed API: generated from the Lua pages, complete, and what its signatures promise."""

import inspect
import pathlib
import subprocess
import sys

import pytest

import polars

import sandwich
from sandwich import _runtime

ROOT = pathlib.Path(__file__).resolve().parents[2]
CROWD = ROOT / "lua/docs/data/crowd.csv"
NAMESPACES = ["aggregate", "agreement", "metrics", "overseers", "model", "train", "tasks", "chart"]


def test_the_generated_modules_are_up_to_date_with_the_lua_pages():
    done = subprocess.run([sys.executable, str(ROOT / "python/generate_api.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("ns", NAMESPACES)
def test_every_lua_function_of_a_namespace_has_its_python_function(ns):
    lua_names = {n for n in dir(getattr(sandwich.session().sw, ns)) if not n.startswith("_")}
    module = getattr(sandwich, ns)
    py_names = {n.rstrip("_") for n in module.__all__}
    assert lua_names == py_names
    for name in module.__all__:
        assert inspect.isfunction(getattr(module, name)) and getattr(module, name).__doc__


def test_signatures_are_the_pages_positional_arguments_then_keyword_only_options():
    sig = inspect.signature(sandwich.aggregate.dawid_skene)
    assert list(sig.parameters) == ["data", "n_iter", "tol"]
    assert sig.parameters["data"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert sig.parameters["n_iter"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["n_iter"].annotation == "int | None"
    assert sig.return_annotation == "dict[str, Any]"
    # Required options are keyword-only without a default; a Lua keyword is renamed.
    classify = inspect.signature(sandwich.train.classify).parameters
    assert classify["model"].default is inspect.Parameter.empty
    assert classify["epochs"].default is None
    assert "from_" in sandwich.tasks.__all__
    assert "crowd-kit" in sandwich.aggregate.dawid_skene.__doc__


def test_options_reach_lua_and_none_means_the_default():
    crowd = sandwich.read_csv(CROWD)  # a pathlib.Path is taken as its string
    one_step = sandwich.aggregate.dawid_skene(crowd, n_iter=1)
    assert one_step["iterations"] == 1 and one_step["converged"] is False
    default = sandwich.aggregate.dawid_skene(crowd, n_iter=None, tol=None)
    assert default["converged"] is True and default["iterations"] > 1
    assert sandwich.read_csv(CROWD, n_rows=5).shape[0] == 5
    assert sandwich.metrics.pgr(weak=0.5, strong=0.6, ceiling=0.7) == pytest.approx(0.5)


def test_a_misspelt_option_is_a_type_error_before_lua_runs():
    with pytest.raises(TypeError, match="n_iters"):
        sandwich.aggregate.dawid_skene(sandwich.read_csv(CROWD), n_iters=3)  # type: ignore[call-arg]


def test_models_are_typed_handles_with_the_lua_methods(tmp_path):
    task = sandwich.tasks.builtin("sentiment", n=64, seed=1)
    assert sandwich.tasks.tokenizer(task, tmp_path / "tok") > 0
    m = sandwich.model.new(arch="bert", tokenizer=str(tmp_path / "tok"), hidden_size=8, layers=1,
                           heads=2, num_labels=2, seed=1)
    sandwich.train.classify(model=m, data=task, text="input", epochs=1, batch_size=32)
    assert m.info()["num_labels"] == 2
    m.save(tmp_path / "ckpt")
    again = sandwich.model.load(tmp_path / "ckpt")
    a = m.predict(task, column="input").to_polars()
    b = again.predict(task, column="input").to_polars()
    assert a["pred"].to_list() == b["pred"].to_list()
    # The Protocol has every method of the Lua Model, and no other.
    protocol = {n for n in dir(sandwich.Model) if not n.startswith("_")}
    assert protocol == set(sandwich.session().sw._methods(m))


def _spec(task):
    model = {"hidden_size": 8, "layers": 1, "heads": 2}
    train = {"epochs": 1, "batch_size": 32, "lr": 3e-3}
    return {
        "task": task,
        "strong": {"model": model, "train": train},
        "weak": {"model": model, "train": train},
        "arms": ["weak", "ceiling", "naive_w2s"],
        "seeds": [1, 2],
    }


def test_an_experiment_from_a_dict_runs_saves_and_reruns_identically(tmp_path):
    task = sandwich.tasks.builtin("sentiment", n=160, seed=1)
    done = []
    seen = {}

    def soft(ctx):
        # A custom arm in Python: B without its labels, the weak model's predictions.
        seen["b"], seen["weak"] = ctx["b"].columns, ctx["weak_predictions"].columns
        return polars.DataFrame(ctx["weak_predictions"]).select("id", "p0", "p1")

    steps = []
    spec = _spec(task) | {
        "hooks": {
            "on_arm_done": lambda arm, seed, acc: done.append(arm),
            "on_step": lambda arm, seed, report: steps.append(report),
        },
        "arms": ["weak", "ceiling", "naive_w2s", {"name": "soft", "supervise": soft}],
    }
    exp = sandwich.experiment("py", spec)
    # The core runs it: no Lua object in between.
    assert not isinstance(exp, sandwich.LuaObject)
    results = exp.run()
    assert done == ["weak", "ceiling", "naive_w2s", "soft"] * 2
    # The step report has the keys Lua's has (eval_* None where no evaluation ran).
    assert steps and set(steps[0]) == {
        "step", "total", "epoch", "loss", "lr", "grad_norm", "eval_loss", "eval_accuracy"
    }
    assert seen == {"b": ["id", "input"], "weak": ["id", "input", "pred", "p0", "p1"]}
    assert set(results.columns) >= {"arm", "seed", "metric", "value"}
    pgr = polars.DataFrame(exp.pgr())
    assert pgr.columns == ["arm", "pgr", "lower", "upper", "seeds", "inverted_seeds", "note"]
    assert pgr["arm"].to_list() == ["naive_w2s", "soft"]
    assert polars.DataFrame(exp.compare("soft", "naive_w2s")).height == 2
    assert exp.manifest()["format"] == 2
    exp.save(tmp_path / "run")
    new, identical, again = sandwich.experiment.rerun(tmp_path / "run", task=task, supervise={"soft": soft})
    assert identical is True and new.shape == results.shape
    assert again.pgr().shape[0] == 2


def test_a_bad_spec_is_a_config_error_naming_the_field():
    task = sandwich.tasks.builtin("sentiment", n=100, seed=1)
    for change, field in [
        ({"aux": {"warmup": 0.2}}, "spec.aux"),
        ({"split": {"test": 1.5}}, "split.test"),
        ({"n_boot": 10}, "n_boot"),
        ({"hooks": {"on_finish": print}}, "spec.hooks.on_finish"),
        ({"arms": ["weak", {"name": "x"}]}, "spec.arms[2]"),
    ]:
        with pytest.raises(sandwich.ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
            sandwich.experiment("bad", _spec(task) | change)


def test_the_typed_spec_has_exactly_the_cores_keys():
    from sandwich._native import _spec_fields
    from sandwich._spec import CORE_TABLES

    core = dict(_spec_fields())
    owned = {"head", "num_labels", "seed", "tokenizer"}  # set by the experiment per arm
    for table, typed in CORE_TABLES.items():
        keys = set(typed.__annotations__)
        want = set(core[table])
        if table in ("new", "load"):
            want -= owned
        if table == "load":
            want |= {"path"}
        if table == "task":
            want -= {"dataframe_hash", "rows"}  # what a manifest records for a DataFrame task
        if table == "spec":
            want |= {"hooks"}  # functions: taken out before the core sees the spec
        if table == "overseer":
            want |= {"predictions"}  # a DataFrame, which sw.overseers.simulate turns into a map
        assert keys == want, (table, keys ^ want)


def test_an_experiment_from_a_lua_file(tmp_path):
    spec = tmp_path / "spec.lua"
    spec.write_text("""
      return {
        task = sw.tasks.builtin("sentiment", {n = 120, seed = 2}),
        strong = {model = {hidden_size = 8, layers = 1, heads = 2}, train = {epochs = 1, batch_size = 32}},
        weak = {model = {hidden_size = 8, layers = 1, heads = 2}, train = {epochs = 1, batch_size = 32}},
        arms = {"weak", "ceiling"},
        hooks = {on_arm_done = function(arm) last_arm = arm end},
      }
    """)
    exp = sandwich.experiment("from_file", spec)
    assert exp.run().shape[0] >= 2
    assert isinstance(exp, sandwich.LuaObject)
    assert sandwich.session().get("last_arm") == "ceiling"
    with pytest.raises(sandwich.ConfigError, match="spec.arm"):
        bad = tmp_path / "bad.lua"
        bad.write_text("return {arm = {}}")
        sandwich.experiment("bad", bad)


def test_a_rust_panic_is_a_sandwich_error_not_a_panic_exception():
    with pytest.raises(sandwich.SandwichError, match="internal error.*boom"):
        sandwich._native._panic_for_tests("boom")
    # The session is still usable afterwards.
    assert sandwich.run("return 1 + 1") == 2


def test_mypy_checks_user_code_against_the_types(tmp_path):
    good = tmp_path / "good.py"
    good.write_text(
        "import sandwich\n"
        "crowd = sandwich.read_csv('crowd.csv', n_rows=10)\n"
        "fit = sandwich.aggregate.dawid_skene(crowd, n_iter=5)\n"
        "alpha: float = sandwich.agreement.krippendorff_alpha(crowd, level='nominal')\n"
        "m = sandwich.model.load('ckpt')\n"
        "spec: sandwich.ExperimentSpec = {'task': {'builtin': 'sentiment'}, 'arms': ['weak'],\n"
        "  'strong': {'model': {'hidden_size': 8}}, 'weak': {'model': {'path': 'ckpt'}}}\n"
        "preds: sandwich.DataFrame = m.predict(['a text'], batch_size=4)\n"
    )
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import sandwich\n"
        "crowd = sandwich.read_csv('crowd.csv')\n"
        "sandwich.aggregate.dawid_skene(crowd, n_iter='5')\n"
        "x: str = sandwich.agreement.percent(crowd)\n"
        "spec: sandwich.ExperimentSpec = {'task': {'builtin': 'x'}, 'arms': [], 'strong': {}, 'weak': {}, 'aux': {'warmup': 1}}\n"
    )
    mypy = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "c")]
    ok = subprocess.run(mypy + [str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout
    ko = subprocess.run(mypy + [str(bad)], capture_output=True, text=True)
    assert ko.returncode == 1
    assert 'Argument "n_iter"' in ko.stdout and "bad.py:4" in ko.stdout, ko.stdout
    assert "bad.py:5" in ko.stdout and "warmup" in ko.stdout, ko.stdout


def test_the_default_session_resolves_each_function_once():
    sandwich.agreement.percent(sandwich.read_csv(CROWD))
    assert "agreement.percent" in _runtime._functions
