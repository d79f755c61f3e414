"""The adapter: how the diagnostics drive ANY looped torch model, one loop at a time.

A looped model, whatever its family (Huginn-style prelude/core/coda, Ouro-style,
PonderNet-style, our :class:`blindspot.nn.LoopedLM`), is four things to the diagnostics:

- ``start(idx) -> (H_0, e)``: the state loop 1 receives and the context ``e`` re-injected at
  every loop (the prelude output; unused when the model has no input injection);
- ``step(x, e) -> H_{k+1}``: one application of the shared loop body to the state ``x`` it
  receives, returning the new state **before** any inter-loop normalization;
- ``carry(H_k, k) -> x_k``: what loop k+1 receives (the inter-loop norm, or the identity);
- ``head(H_k, k, K) -> logits``: the prediction decoded from loop k of a K-loop run (the
  coda, if any, the readout norm, if any, and the readout matrix).

:class:`LoopAdapter` holds these four callables; :meth:`LoopAdapter.from_modules` builds one
from the *names* of a model's submodules (``model.get_submodule``), and
:func:`adapter_for` builds one for our own ``LoopedLM``, asking the model's own readout rule
(:meth:`blindspot.nn.LoopedLM.readout_normalized`) which loops it normalizes. The recorder
(:mod:`blindspot.diagnostics.recorder`) then produces the same :class:`LoopTrace` for both;
``tests/test_diagnostics_adapter.py`` checks that the recorded last-loop logits equal each
model's own forward pass.

``readout_form(k, K)`` optionally states what kind of readout loop k's head is, so that the
radial gradient share can be compared with its closed form (proofs/eps_leak.md,
proofs/readouts.md): ``"raw"`` for z = W·h
(no bias), ``"rmsnorm"`` with its ε for z = W·RMSNorm_ε(h) (any gain, no bias), ``None`` when
unknown (e.g. coda layers sit between the state and the head).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

Injection = Literal["none", "add", "concat", "call"]


@dataclass(frozen=True)
class ReadoutForm:
    """What the readout of one loop is, when it is one of the two forms with a closed form."""

    kind: Literal["raw", "rmsnorm"]
    eps: float = 0.0


@dataclass(frozen=True, init=False)
class LoopAdapter:
    """The four callables that define a looped model to the diagnostics (see module doc).

    ``readout=`` (constructor, attribute) is the deprecated name of ``head``: ``readout``
    names only the readout kind (norm / raw / final_only_norm)."""

    start: Callable[[Tensor], tuple[Tensor, Tensor | None]]
    step: Callable[[Tensor, Tensor | None], Tensor]
    head: Callable[[Tensor, int, int], Tensor]
    num_loops: int  # K, the trained depth
    carry: Callable[[Tensor, int], Tensor] | None = None  # None: no inter-loop norm
    readout_form: Callable[[int, int], ReadoutForm | None] | None = None
    readout_depends_on_depth: bool = False  # True when head(h, k, K) changes with K
    name: str = "model"
    # True when Δ = step(x) − x depends only on x/‖x‖ (a pre-norm residual loop without input
    # injection or inter-loop norm: Lemma 2's premise); the toy fit then fixes ρ = 1
    direction_only_update: bool = False
    module: nn.Module | None = None  # the model, so diagnose() can put it in eval mode

    def __init__(self, start: Callable[[Tensor], tuple[Tensor, Tensor | None]],
                 step: Callable[[Tensor, Tensor | None], Tensor],
                 head: Callable[[Tensor, int, int], Tensor] | None = None,
                 num_loops: int | None = None,
                 carry: Callable[[Tensor, int], Tensor] | None = None,
                 readout_form: Callable[[int, int], ReadoutForm | None] | None = None,
                 readout_depends_on_depth: bool = False, name: str = "model",
                 direction_only_update: bool = False, module: nn.Module | None = None, *,
                 readout: Callable[[Tensor, int, int], Tensor] | None = None):
        head = _renamed_head(head, readout, "LoopAdapter")
        values = {"start": start, "step": step, "head": head, "num_loops": num_loops,
                  "carry": carry, "readout_form": readout_form,
                  "readout_depends_on_depth": readout_depends_on_depth, "name": name,
                  "direction_only_update": direction_only_update, "module": module}
        for field, value in values.items():
            object.__setattr__(self, field, value)  # frozen: set once, here
        self._check()

    def _check(self) -> None:
        if not isinstance(self.num_loops, int) or isinstance(self.num_loops, bool) \
                or self.num_loops < 1:
            raise ValueError(f"LoopAdapter.num_loops must be a positive int (the trained depth "
                             f"K), got {self.num_loops!r}")
        for field in ("start", "step", "head"):
            if not callable(getattr(self, field)):
                raise TypeError(f"LoopAdapter.{field} must be callable, got "
                                f"{type(getattr(self, field)).__name__}")

    @property
    def readout(self) -> Callable[[Tensor, int, int], Tensor]:
        """Deprecated name of :attr:`head`."""
        warnings.warn("LoopAdapter.readout is deprecated; use LoopAdapter.head",
                      DeprecationWarning, stacklevel=2)
        return self.head

    def carry_state(self, h: Tensor, loop: int) -> Tensor:
        return h if self.carry is None else self.carry(h, loop)

    def form(self, loop: int, num_loops: int) -> ReadoutForm | None:
        return None if self.readout_form is None else self.readout_form(loop, num_loops)

    @classmethod
    def from_modules(cls, model: nn.Module, *, body: str, head: str | None = None,
                     num_loops: int, prelude: str | None = None,
                     inter_loop_norm: str | None = None, injection: Injection = "none",
                     initial_state: Literal["prelude", "zeros"] = "prelude",
                     readout_form: ReadoutForm | None = None,
                     readout: str | None = None) -> LoopAdapter:
        """Build an adapter from the dotted names of ``model``'s submodules.

        - ``prelude``: ``idx -> e`` (B, T) -> (B, T, d); without one, ``idx`` must already be
          the embedded input (B, T, d).
        - The prelude and the body may return what Hugging Face layers return: the state
          tensor, a tuple whose first element is the state, or a model-output object whose
          first field is (``out.to_tuple()[0]``, e.g. ``BaseModelOutput.last_hidden_state``);
          :func:`state_of` takes the state out of it.
        - ``body``: the shared loop body; it receives the state (``injection="none"``), the
          state plus e (``"add"``), their concatenation on the last axis (``"concat"``,
          Huginn-style) or both as two arguments (``"call"``), and returns the next state.
        - ``inter_loop_norm``: applied to H_k before loop k+1 (omit when the model has none).
        - ``head``: ``H_k -> logits`` (coda, readout norm and readout matrix); the same at
          every loop. ``readout=`` is its deprecated name.
        - ``initial_state``: H_0 = e (``"prelude"``) or zeros (``"zeros"``, state-space style;
          loop 1 then has no input direction: its radial and tangential terms are blank in
          the Lemma 2 table, while ‖H_1‖ is reported as usual).

        A name that is not a submodule raises ``ValueError`` naming it and listing the
        model's submodules (``tests/test_diagnostics_adapter.py::test_missing_module_is_named``).
        """
        head = _renamed_head(head, readout, "LoopAdapter.from_modules")
        if head is None:
            raise TypeError("from_modules needs head=: the dotted name of the submodule that "
                            "maps a state H_k to logits")
        if injection not in ("none", "add", "concat", "call"):
            raise ValueError(f"injection must be one of none, add, concat, call; got "
                             f"{injection!r}")
        if initial_state not in ("prelude", "zeros"):
            raise ValueError(f"initial_state must be 'prelude' or 'zeros'; got {initial_state!r}")
        pre = _submodule(model, prelude, "prelude") if prelude else None
        core = _submodule(model, body, "body")
        decode = _submodule(model, head, "head")
        norm = _submodule(model, inter_loop_norm, "inter_loop_norm") if inter_loop_norm else None

        def start(idx: Tensor) -> tuple[Tensor, Tensor]:
            e = idx if pre is None else state_of(pre(idx), f"prelude {prelude!r}")  # (B, T, d)
            if e.dim() != 3:
                raise ValueError(f"the prelude must return a (B, T, d) state; got shape "
                                 f"{tuple(e.shape)} (without a prelude, pass embedded inputs)")
            h0 = e if initial_state == "prelude" else torch.zeros_like(e)
            return h0, e

        def call(x: Tensor, e: Tensor | None):
            if injection == "none":
                return core(x)
            if injection == "add":
                return core(x + e)
            if injection == "concat":
                return core(torch.cat([x, e], dim=-1))  # (B, T, 2d) -> (B, T, d)
            return core(x, e)

        def step(x: Tensor, e: Tensor | None) -> Tensor:
            return state_of(call(x, e), f"body {body!r}")

        return cls(
            start=start,
            step=step,
            head=lambda h, loop, k: decode(h),
            num_loops=num_loops,
            carry=None if norm is None else (lambda h, loop: norm(h)),
            readout_form=None if readout_form is None else (lambda loop, k: readout_form),
            name=type(model).__name__,
            module=model,
        )


def state_of(out: object, role: str) -> Tensor:
    """The state tensor in what a module returned: the tensor itself, the first element of a
    tuple or list, or the first field of a model-output object (anything with ``to_tuple()``,
    as Hugging Face's ``ModelOutput``). Anything else is a ``TypeError`` naming ``role`` and
    what to wrap."""
    if isinstance(out, Tensor):
        return out
    if isinstance(out, tuple | list):
        first = out[0] if out else None
    else:
        to_tuple = getattr(out, "to_tuple", None)
        items = to_tuple() if callable(to_tuple) else ()
        first = items[0] if items else None
    if isinstance(first, Tensor):
        return first
    what = (f"a {type(out).__name__} of {len(out)} items"
            if isinstance(out, tuple | list) else f"a {type(out).__name__}")
    raise TypeError(f"the {role} returned {what} with no state tensor first: wrap it in an "
                    "nn.Module whose forward returns the (B, T, d) state tensor")


def _renamed_head(head, readout, where: str):
    """``head``, or the value passed under its deprecated name ``readout`` (with a
    DeprecationWarning pointing at the caller's caller)."""
    if readout is None:
        return head
    warnings.warn(f"{where}(readout=...) is deprecated; use head=...", DeprecationWarning,
                  stacklevel=3)
    if head is not None:
        raise TypeError(f"{where}: give head= only (readout= is its old name)")
    return readout


def _submodule(model: nn.Module, name: str, role: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        shown = ", ".join(names[:40]) + (" ..." if len(names) > 40 else "")
        raise ValueError(
            f"the adapter names {role}={name!r}, but {type(model).__name__} has no submodule "
            f"{name!r}. Its submodules are: {shown or '(none)'}. Pass the dotted name of the "
            f"module that plays the {role} role."
        ) from None


def adapter_for(model: nn.Module) -> LoopAdapter:
    """The adapter of our own :class:`blindspot.nn.LoopedLM` (or of any model exposing the
    same ``embed`` / ``loop_step`` / ``carry`` / ``readout_logits`` / ``readout_normalized``
    methods)."""
    missing = [m for m in ("cfg", "embed", "loop_step", "carry", "readout_logits",
                           "readout_normalized") if not hasattr(model, m)]
    if missing:
        raise TypeError(
            f"{type(model).__name__} has no {', '.join(missing)}: it is not a blindspot LoopedLM."
            " Describe it with LoopAdapter.from_modules(model, body=..., head=..., "
            "num_loops=...) instead."
        )
    cfg = model.cfg

    def form(loop: int, num_loops: int) -> ReadoutForm | None:
        if cfg.coda_layers or cfg.norm != "rmsnorm":
            return None  # layers or a LayerNorm bias sit between H_k and the head
        if model.readout_normalized(loop, num_loops):
            return ReadoutForm("rmsnorm", cfg.norm_eps)
        return ReadoutForm("raw")

    return LoopAdapter(
        start=model.embed,
        step=model.loop_step,
        head=lambda h, loop, k: model.readout_logits(h, loop, k),
        num_loops=cfg.num_loops,
        carry=(lambda h, loop: model.carry(h)) if cfg.inter_loop_norm else None,
        readout_form=form,
        # a loop's head changes with the run's depth when the rule says so for some loop
        readout_depends_on_depth=any(
            model.readout_normalized(k, cfg.num_loops) != model.readout_normalized(k, k)
            for k in range(1, cfg.num_loops + 1)),
        direction_only_update=cfg.input_injection == "none" and not cfg.inter_loop_norm,
        name="LoopedLM",
        module=model,
    )
