"""Training progress in Python: a tqdm bar when tqdm is installed, else a plain text bar."""

import pytest

import sandwich
from sandwich import _progress


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tok = tmp_path_factory.mktemp("tok")
    task = sandwich.tasks.builtin("sentiment", n=64, seed=3)
    sandwich.tasks.tokenizer(task, tok)
    return task, str(tok)


def _train(tiny):
    task, tok = tiny
    m = sandwich.model.new(arch="bert", tokenizer=tok, hidden_size=8, layers=1, heads=2, num_labels=2)
    return sandwich.train.classify(model=m, data=task, text="input", epochs=1, batch_size=16)


def test_without_tqdm_a_plain_bar_is_rewritten_in_place_on_stderr(tiny, monkeypatch, capsys):
    monkeypatch.setattr(_progress, "_tqdm", None)
    _train(tiny)
    err = capsys.readouterr().err
    assert err.startswith("\r") and err.endswith("\n"), repr(err)
    last = err.rstrip("\n").split("\r")[-1]
    # The last frame is drawn whatever the rate limit: full bar, 4 of 4 steps, the loss.
    assert "[" + "#" * 30 + "] 4/4 loss " in last, repr(last)


class FakeTqdm:
    bars: list = []

    def __init__(self, total, desc, leave):
        self.total, self.desc, self.leave = total, desc, leave
        self.n, self.seen, self.postfix, self.closed = 0, [], "", False
        FakeTqdm.bars.append(self)

    def set_postfix_str(self, s, refresh):
        self.postfix = s

    def refresh(self):
        self.seen.append(self.n)

    def close(self):
        self.closed = True


def test_with_tqdm_one_bar_per_job_counts_the_steps_and_closes(tiny, monkeypatch, capsys):
    FakeTqdm.bars = []
    monkeypatch.setattr(_progress, "_tqdm", FakeTqdm)
    _train(tiny)
    [bar] = FakeTqdm.bars
    assert bar.total == 4 and not bar.leave and bar.desc
    assert bar.seen[-1] == 4 and bar.seen == sorted(bar.seen)
    assert bar.postfix.startswith("loss ") and bar.closed
    assert capsys.readouterr().err == ""  # nothing from the plain bar


def test_a_failing_bar_is_reported_and_training_goes_on(tiny, monkeypatch, capsys):
    class Broken(FakeTqdm):
        def refresh(self):
            raise RuntimeError("the bar broke")

    monkeypatch.setattr(_progress, "_tqdm", Broken)
    metrics = _train(tiny)
    assert len(metrics) == 4
    assert "the bar broke" in capsys.readouterr().err
