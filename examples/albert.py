"""A looped model nobody in this project wrote: Hugging Face transformers' ALBERT.

ALBERT applies one shared layer N times: a looped model. This example builds a small,
randomly initialised ``AlbertForMaskedLM`` (no download) and uses its pieces as they are:

- the prelude, one module: ALBERT's embeddings (word + position + token type, a LayerNorm)
  followed by its ``embedding_hidden_mapping_in`` projection;
- the loop body: ALBERT's shared layer, made causal (next-token prediction) by the additive
  attention mask it is called with. In its own **post-LN** form (``AlbertLayer``: attention,
  residual, LayerNorm; feed-forward, residual, LayerNorm), and in a **pre-LN** form built
  from the same weights (``PreLNAlbertLayer``: each LayerNorm moved before its sub-layer,
  the residual stream left unnormalized);
- the head: a final LayerNorm, then ALBERT's MLM head (whose decoder is tied to the word
  embeddings). The same head in both forms, so only the body differs.

Each form is trained a few steps with per-loop cross-entropy (every loop's state decoded
through the head) in a plain torch loop, with a :class:`~blindspot.control.ScaleMonitor`
watching; then :func:`~blindspot.diagnostics.diagnose` runs on a held-out batch. The pre-LN
form has the readout blind spot (the head's LayerNorm hides the scale from every loss, and the
residual stream carries it from loop to loop): the monitor warns. The post-LN form keeps
‖H_k‖ at √d with its own LayerNorm: the monitor stays silent.

    pip install -e ".[hf]"          # transformers, pinned
    python examples/albert.py [--steps 100] [--out runs/albert]

writes ``OUT/albert.json`` (per form: the monitor's records and verdict, the diagnose tables'
scale and radial rows, and a run card; atomically).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from blindspot.checks.control import byte_batches
from blindspot.control import BlindSpotWarning, ScaleMonitor, blind_threshold
from blindspot.diagnostics import LoopAdapter, diagnose
from blindspot.provenance import atomic_write_json, run_card

FORMS = ("post_ln", "pre_ln")
LOOPS = 6  # K: the shared layer applied six times
# tiny sizes: a CPU trains both forms in seconds; no dropout, so eval and training agree
CONFIG = {"vocab_size": 256, "embedding_size": 128, "hidden_size": 128, "num_attention_heads": 4,
          "intermediate_size": 256, "num_hidden_layers": LOOPS, "max_position_embeddings": 64,
          "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
          "classifier_dropout_prob": 0.0}
LR = 3e-3  # AdamW: every pre-LN state grows several-fold within 20 steps while ‖H_K‖/‖H_1‖ falls
STEPS, EVERY = 100, 20  # optimizer steps per form; monitor interval
SEQ, BATCH = 32, 8
EVAL_SEED = 1000  # held-out text for diagnose: another seed of the generated corpus


def albert(seed: int) -> nn.Module:
    """A randomly initialised ``AlbertForMaskedLM`` of :data:`CONFIG` (nothing downloaded)."""
    from transformers import AlbertConfig, AlbertForMaskedLM

    torch.manual_seed(seed)
    return AlbertForMaskedLM(AlbertConfig(**CONFIG, attn_implementation="eager"))


def causal_mask(x: Tensor) -> Tensor:
    """(1, 1, T, T) additive mask: 0 where position t may attend to s ≤ t, -inf after."""
    T = x.shape[1]
    future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
    return torch.zeros(T, T, dtype=x.dtype, device=x.device).masked_fill(
        future, float("-inf"))[None, None]


class CausalAlbertLayer(nn.Module):
    """ALBERT's own shared layer (post-LN), called with a causal mask: ``forward(x) -> H``."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x, causal_mask(x))


class PreLNAlbertLayer(nn.Module):
    """The same layer's weights in pre-LN form, causal:
    ``h = x + Attn(LN_a(x))``, ``H = h + FFN(LN_f(h))``, where ``LN_a`` is the layer's
    attention LayerNorm and ``LN_f`` its ``full_layer_layer_norm`` (ALBERT applies each after
    its residual sum instead)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def attend(self, y: Tensor) -> Tensor:
        """ALBERT's causal self-attention without its residual and LayerNorm."""
        a = self.layer.attention
        B, T, _ = y.shape
        q, k, v = (p(y).view(B, T, a.num_attention_heads, a.attention_head_size).transpose(1, 2)
                   for p in (a.query, a.key, a.value))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=a.scaling)
        return a.dense(out.transpose(1, 2).reshape(B, T, a.all_head_size))

    def forward(self, x: Tensor) -> Tensor:
        h = x + self.attend(self.layer.attention.LayerNorm(x))
        return h + self.layer.ff_chunk(self.layer.full_layer_layer_norm(h))


class LoopedAlbert(nn.Module):
    """A prelude, one shared causal layer applied ``loops`` times, a head read at every loop."""

    def __init__(self, form: str, seed: int = 0, loops: int = LOOPS):
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
        mlm = albert(seed)
        hidden = mlm.config.hidden_size
        self.loops = loops
        self.prelude = nn.Sequential(mlm.albert.embeddings,
                                     mlm.albert.encoder.embedding_hidden_mapping_in)
        layer = mlm.albert.encoder.albert_layer_groups[0].albert_layers[0]
        self.body = CausalAlbertLayer(layer) if form == "post_ln" else PreLNAlbertLayer(layer)
        self.head = nn.Sequential(nn.LayerNorm(hidden, eps=mlm.config.layer_norm_eps),
                                  mlm.predictions)

    def forward(self, idx: Tensor) -> list[Tensor]:
        """Per-loop logits, (B, T, V) each."""
        h, out = self.prelude(idx), []
        for _ in range(self.loops):
            h = self.body(h)
            out.append(self.head(h))
        return out


def adapter_of(model: LoopedAlbert) -> LoopAdapter:
    return LoopAdapter.from_modules(model, prelude="prelude", body="body", head="head",
                                    num_loops=model.loops)


def train(form: str, steps: int, every: int, seed: int) -> tuple[LoopedAlbert, ScaleMonitor]:
    """Per-loop cross-entropy, AdamW, the monitor observing every step."""
    model = LoopedAlbert(form, seed)
    monitor = ScaleMonitor(adapter_of(model), every=every)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    data = byte_batches(seed, batch=BATCH, seq=SEQ)
    for step in range(steps + 1):
        tokens = next(data)
        x, y = tokens[:, :-1], tokens[:, 1:]
        logits = model(x)
        loss = sum(F.cross_entropy(z.flatten(0, 1), y.flatten()) for z in logits) / len(logits)
        opt.zero_grad()
        loss.backward()
        opt.step()
        monitor.observe(step, x, y)
    return model, monitor


def diagnosis(model: LoopedAlbert, seed: int = EVAL_SEED) -> dict:
    """``diagnose`` on a held-out batch: its scale and radial-gradient rows, and what they say."""
    tables = diagnose(adapter_of(model), next(byte_batches(seed, batch=BATCH, seq=SEQ)))
    scale = tables["scale"].rows[1:]  # loops 1..K (row 0 is H_0)
    radial = tables["radial_gradient"].rows
    share = max(r["radial_share"] for r in radial)
    toy = tables["toy_prediction"]
    return {"scale_mean": [r["scale_mean"] for r in scale],
            "radial_share": [r["radial_share"] for r in radial],
            "max_radial_share": share, "blind": share <= blind_threshold(torch.float32),
            "loop_ratio": scale[-1]["scale_mean"] / scale[0]["scale_mean"],
            "toy_prediction": toy.rows, "toy_notes": toy.notes}


def run_form(form: str, steps: int, every: int, seed: int) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BlindSpotWarning)
        model, monitor = train(form, steps, every, seed)
    fired = [w for w in caught if issubclass(w.category, BlindSpotWarning)]
    for w in caught:
        if w not in fired:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    recs = monitor.records
    return {"monitor": recs, "warning_step": monitor.fired_at, "warnings": len(fired),
            "scale_K": [recs[0]["scale_mean"][-1], recs[-1]["scale_mean"][-1]],
            "max_radial_share": max(max(r["radial_share"]) for r in recs),
            "diagnose": diagnosis(model)}


def parser() -> argparse.ArgumentParser:
    """The command line; every path it writes defaults under runs/."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=STEPS, help="optimizer steps per form")
    p.add_argument("--every", type=int, default=EVERY, help="monitor interval (steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/albert", help="folder for albert.json")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    return p


def main(argv=None) -> dict:
    args = parser().parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args) -> dict:
    t0 = time.perf_counter()
    forms = {}
    for form in FORMS:
        r = forms[form] = run_form(form, args.steps, args.every, args.seed)
        print(f"{form:>8}: ‖H_K‖ {r['scale_K'][0]:.3g} -> {r['scale_K'][1]:.3g}, max radial "
              f"share {r['max_radial_share']:.1e}, monitor warning "
              + (f"at step {r['warning_step']}" if r["warnings"] else "none"), flush=True)
    wall = time.perf_counter() - t0
    config = {"model": "transformers AlbertForMaskedLM, random init", "albert": CONFIG,
              "loops": LOOPS, "steps": args.steps, "every": args.every, "lr": LR,
              "optimizer": "AdamW", "batch": BATCH, "seq": SEQ, "threads": args.threads,
              "supervision": "per-loop cross-entropy, causal"}
    result = {"forms": forms,
              "run_card": run_card(config=config, seed=args.seed, wall_time_s=wall)}
    out = Path(args.out) / "albert.json"
    atomic_write_json(out, result)
    print(f"wrote {out} ({wall:.0f} s)")
    return result


if __name__ == "__main__":
    main()
