"""The experiment spec, typed: what `sandwich.experiment(name, spec)` takes. The keys are those of
the core's `Spec` (`sandwich_core::experiment::spec`), which the Lua page `sw.experiment`
documents; `python/tests/test_api.py` checks every TypedDict here against the keys the core's
types accept (`sandwich._native.spec_fields()`), so the two cannot drift. Defaults are the
core's; a key left out takes it."""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence, TypedDict, Union

from ._runtime import FrameLike


class BuiltinTask(TypedDict, total=False):
    """A built-in task (`sandwich.tasks.builtin`), regenerated from the manifest on rerun."""

    builtin: str
    n: int
    seed: int


class NewModel(TypedDict, total=False):
    """A model from scratch (`sandwich.model.new` options; `arch` defaults to "bert"). The
    experiment sets head, num_labels, seed and tokenizer."""

    arch: Literal["bert", "gpt2", "llama", "qwen2"]
    vocab_size: int
    hidden_size: int
    layers: int
    heads: int
    kv_heads: int
    intermediate_size: int
    max_positions: int
    dtype: str
    device: str
    rope_theta: float
    tie_embeddings: bool


class _LoadModelRequired(TypedDict):
    path: str


class LoadModel(_LoadModelRequired, total=False):
    """A checkpoint directory (`sandwich.model.load` options): a fresh head per arm and seed."""

    dtype: str
    device: str


class Train(TypedDict, total=False):
    """Training options of a side (`sandwich.train.classify`'s defaults)."""

    epochs: int
    max_steps: int
    batch_size: int
    grad_accum: int
    lr: float
    weight_decay: float
    schedule: Literal["constant", "linear", "cosine"]
    warmup_steps: int
    max_grad_norm: float
    max_length: int


class _SideRequired(TypedDict):
    model: Union[NewModel, LoadModel]


class Side(_SideRequired, total=False):
    """The weak or the strong side (`head_init` overrides the spec's for this side)."""

    train: Train
    head_init: Literal["zeros", "hf"]


class Overseer(TypedDict, total=False):
    """One simulated overseer (`sandwich.overseers.simulate`)."""

    id: str
    kind: Literal["one_coin", "confusion", "spammer", "constant", "model"]
    accuracy: float
    confusion: Sequence[Sequence[float]]
    constant: str
    bias: str
    bias_strength: float
    flip: float


class Novices(TypedDict):
    """The simulated novices of the crowd and novice arms."""

    overseers: Sequence[Overseer]
    k: int


class Overseers(TypedDict):
    novices: Novices


class Split(TypedDict, total=False):
    """Each seed's test share (then halves A and B)."""

    test: float


class Aux(TypedDict, total=False):
    """The auxiliary confidence loss of `aux_w2s` (openai/weak-to-strong's logconf)."""

    aux_coef: float
    warmup_frac: float
    schedule: Literal["reference", "linear"]


class Assistance(TypedDict, total=False):
    """Adoption of the assistant's answer with probability trust × confidence^calibration."""

    trust: float
    calibration: float


class Context(TypedDict, total=False):
    """What a custom arm's `supervise` receives: never B's labels."""

    seed: int
    classes: int
    a: Any
    b: Any
    weak_predictions: Any
    novices: Any


class _CustomArmRequired(TypedDict):
    name: str
    supervise: Callable[[Context], FrameLike]


class CustomArm(_CustomArmRequired):
    """A custom arm: `supervise(ctx)` returns B's `id, label` or `id, p0 …`."""


class Hooks(TypedDict, total=False):
    on_step: Callable[[str, int, dict[str, Any]], None]
    on_arm_done: Callable[[str, int, float], None]


class _SpecRequired(TypedDict):
    task: Union[BuiltinTask, FrameLike]
    strong: Side
    weak: Side
    arms: Sequence[Union[str, CustomArm]]


class ExperimentSpec(_SpecRequired, total=False):
    """A sandwiching / weak-to-strong experiment (the Lua page `sw.experiment` explains every
    key)."""

    tokenizer: str
    overseers: Overseers
    seeds: Sequence[int]
    split: Split
    aux: Aux
    assistance: Assistance
    level: float
    head_init: Literal["zeros", "hf"]
    hooks: Hooks


#: TypedDict → the core's table name, for the test that compares their keys.
CORE_TABLES: dict[str, Any] = {
    "spec": ExperimentSpec,
    "task": BuiltinTask,
    "side": Side,
    "train": Train,
    "new": NewModel,
    "load": LoadModel,
    "overseers": Overseers,
    "novices": Novices,
    "split": Split,
    "aux": Aux,
    "assistance": Assistance,
}
