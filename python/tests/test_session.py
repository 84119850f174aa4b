"""sandwich.Session and the module-level API over the default session."""

import pathlib

import pytest

import sandwich

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_eval_returns_python_values():
    s = sandwich.Session()
    assert s.eval("1 + 2") == 3
    assert s.eval("0.5 * 3") == 1.5
    assert s.eval("'a' .. 'b'") == "ab"
    assert s.eval("{1, 2, 3}") == [1, 2, 3]
    assert s.eval("{x = 1, y = {true, false}}") == {"x": 1, "y": [True, False]}
    assert s.eval("nil") is None


def test_globals_persist_and_set_get_round_trip():
    s = sandwich.Session()
    s.eval("counter = 41")
    s.set("step", 1)
    assert s.eval("counter + step") == 42
    s.set("cfg", {"name": "x", "sizes": [1, 2]})
    assert s.get("cfg") == {"name": "x", "sizes": [1, 2]}
    assert s.eval("cfg.sizes[2]") == 2


def test_print_goes_to_python_stdout(capsys):
    sandwich.Session().eval("print('hello from lua', 1)")
    assert "hello from lua\t1" in capsys.readouterr().out


def test_run_file_sets_arg(tmp_path):
    script = tmp_path / "s.lua"
    script.write_text("result = arg[1] .. select(2, ...)")
    s = sandwich.Session()
    s.run_file(str(script), ["a", "b"])
    assert s.get("result") == "ab"


def test_module_functions_mirror_the_lua_names_with_their_docs():
    crowd = sandwich.read_csv(str(ROOT / "lua/docs/data/crowd.csv"))
    assert isinstance(crowd, sandwich.DataFrame)
    fit = sandwich.aggregate.dawid_skene(crowd)
    assert set(fit) >= {"labels", "probas"}
    assert fit["labels"].columns[:2] == ["task", "label"]
    assert "Dawid" in sandwich.aggregate.dawid_skene.__doc__
    alpha = sandwich.agreement.krippendorff_alpha(crowd, level="nominal")
    assert -1.0 <= alpha <= 1.0


def test_keyword_arguments_are_the_options_table():
    gold = sandwich.frame({"task": ["t1", "t2", "t3", "t4"], "true_label": ["a", "b", "a", "b"]})
    crowd = sandwich.overseers.simulate(gold=gold, overseers=[{"id": "w", "accuracy": 1.0}], seed=1)
    assert crowd.shape == (4, 3)


def test_objects_have_methods_and_python_callables_are_hooks():
    s = sandwich.Session()
    s.eval("""
      task = sw.tasks.builtin("sentiment", {n = 64, seed = 1})
      tok = os.tmpname() .. "-tok"
      sw.tasks.tokenizer(task, tok)
    """)
    m = s.sw.model.new(arch="bert", tokenizer=s.get("tok"), hidden_size=8, layers=1, heads=2, num_labels=2, seed=1)
    steps = []
    metrics = s.sw.train.classify(model=m, data=s.get("task"), text="input", epochs=1, batch_size=16,
                                  on_step=lambda r: steps.append(r["step"]))
    assert steps == [1, 2, 3, 4] and len(metrics) == 4
    preds = m.predict(s.get("task"), column="input")
    assert "pred" in preds.columns


def test_run_takes_a_file_or_code():
    assert sandwich.run("return 6 * 7") == 42


def test_lua_displays_are_text_on_stdout_outside_ipython(capsys):
    s = sandwich.Session()
    s.eval("sw.display.markdown('# a heading'); sw.display(sw.frame{a = {1, 2}})")
    out = capsys.readouterr().out
    assert "# a heading" in out and "shape: (2, 1)" in out
