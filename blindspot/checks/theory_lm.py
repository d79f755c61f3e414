"""The theory's statements measured on a real :class:`~blindspot.nn.LoopedLM` (float64).

The sympy certificates and their ``torch.func`` twins (:mod:`blindspot.symbolic.numeric`)
check each identity on small generic models; the functions here take the package's own
looped transformer, with its tied or untied readout, its stack of attention and SwiGLU
sublayers and its initializations, and measure the same quantities. The claims of
:mod:`blindspot.checks.symbolic` print them, and the book's chapters 2 and 3 glue them.
Registers no claims. Tests: ``tests/test_symbolic_lm.py``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from blindspot.checks.small import small_model
from blindspot.nn import LoopedLM


def small_lm(seed: int = 0, **overrides) -> LoopedLM:
    """The checks' small float64 :class:`LoopedLM` (:func:`blindspot.checks.small.small_model`)
    with GPT-2-style init unless ``init="paper"``."""
    return small_model(seed, **{"init": "gpt2", **overrides})


def batch(model: LoopedLM, seed: int = 1, size: int = 2) -> tuple[Tensor, Tensor]:
    """Random (inputs, targets) of shape (size, max_seq_len)."""
    g = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    idx = torch.randint(0, cfg.vocab_size, (size, cfg.max_seq_len + 1), generator=g)
    return idx[:, :-1], idx[:, 1:]


def per_loop_loss(model: LoopedLM, idx: Tensor, targets: Tensor) -> Tensor:
    """The paper's per-loop loss: the mean over loops of the token-mean CE of each loop."""
    out = model(idx)
    return sum(F.cross_entropy(z.flatten(0, 1), targets.flatten()) for z in out.logits) \
        / len(out.logits)


def stream_parameters(model: LoopedLM) -> dict[str, Tensor]:
    """The parameter group P that writes the residual stream: token and position embeddings,
    and per block of the prelude, loop and coda the output projection of each sublayer
    (pre-norm) or its post-norm gain and bias (sandwich). With a tied readout the token
    embedding is also the readout matrix (one tensor, counted once)."""
    cfg = model.cfg
    if cfg.inter_loop_norm:
        raise ValueError("with an inter-loop norm the loop input is N(H_k), not a multiple of "
                         "P: the stream is not homogeneous in P and the statement does not apply")
    # input injection keeps the stream homogeneous: "add" re-adds e (a multiple of P), and
    # "concat"'s injection projection A[h; e] (injection_proj) is linear in (h, e) (A itself
    # is not in P)
    names = {"tok_emb.weight", "pos_emb.weight"}
    for name, _ in model.named_parameters():
        parts = name.split(".")
        if parts[0] not in ("prelude", "blocks", "coda"):
            continue
        leaf = ".".join(parts[2:])
        if cfg.block_norm == "pre" and leaf in ("attn.proj.weight", "mlp.proj.weight"):
            names.add(name)
        if cfg.block_norm == "sandwich" and parts[2] in ("post_attn", "post_mlp"):
            names.add(name)
    params = dict(model.named_parameters())
    return {n: params[n] for n in sorted(names)}


def stream_radial(model: LoopedLM, idx: Tensor, targets: Tensor) -> dict[str, float]:
    """<P, grad_P L> for the per-loop loss L, |P| |grad_P L|, and the tied-readout closed
    form (1/K) sum_k mean_t (E_p[z_k] - z_{k,y}) (proofs/parameters.md)."""
    P = stream_parameters(model)
    model.zero_grad(set_to_none=True)
    loss = per_loop_loss(model, idx, targets)
    grads = torch.autograd.grad(loss, list(P.values()))
    inner = sum(float((p.detach() * g).sum()) for p, g in zip(P.values(), grads, strict=True))
    size = math.sqrt(sum(float(p.detach().pow(2).sum()) for p in P.values())) \
        * math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
    with torch.no_grad():
        logits = model(idx).logits
        force = [((z.softmax(-1) * z).sum(-1) - z.gather(-1, targets[..., None])[..., 0]).mean()
                 for z in logits]
    return {"inner": inner, "size": size, "correction": float(sum(force) / len(force)),
            "loss": float(loss.detach())}


def tied_vs_untied(seed: int = 0, init: str = "gpt2", **overrides) -> dict[str, dict[str, float]]:
    """:func:`stream_radial` for the same architecture with a tied and an untied readout, at
    the GPT-2-style init (``"gpt2"``) or the paper's (``"paper"``: PyTorch's defaults, whose
    N(0, 1) tied readout makes the initial logits large)."""
    if init not in ("gpt2", "paper"):
        raise ValueError(f"init must be 'gpt2' or 'paper', got {init!r}")
    out = {}
    for tied in (True, False):
        m = small_lm(seed, tie_embeddings=tied, init=init, **overrides)
        out["tied" if tied else "untied"] = stream_radial(m, *batch(m))
    return out


def direction_only_adapter(seed: int = 0, num_loops: int = 4):
    """A loop that meets the premise of proofs/total_loss.md exactly: each loop is ONE
    pre-norm sublayer of a LoopedLM block (its attention branch), Delta = B(N(H)) at eps = 0,
    no inter-loop norm, an RMSNorm readout with eps = 0. Returns a diagnostics LoopAdapter."""
    from blindspot.diagnostics.adapter import LoopAdapter, ReadoutForm
    from blindspot.nn import functional as BF

    m = small_lm(seed, n_layers=1)
    blk = m.blocks[0]
    return LoopAdapter(start=m.embed, step=lambda x, e: x + blk.attn(blk.norm_attn(x)),
                       head=lambda h, k, K: m.lm_head(BF.rms_norm(h, m.final_norm.weight)),
                       num_loops=num_loops, readout_form=lambda k, K: ReadoutForm("rmsnorm"),
                       module=m)


def total_radial_exact(seed: int = 0) -> dict[str, Tensor]:
    """The diagnostics' total-loss radial force on :func:`direction_only_adapter`, where the
    prediction -sum_{j>=k} <Delta_j, grad_{H_{j+1}} L> must hold to round-off."""
    from blindspot.diagnostics.radial import total_radial_force

    a = direction_only_adapter(seed)
    idx, targets = batch(a.module)
    with torch.no_grad():
        h0, e = a.start(idx)
    return total_radial_force(a, h0, e, targets)


def total_radial_at_scale(scale: float, seed: int = 0) -> dict[str, Tensor]:
    """The diagnostics' total-loss radial force R_k (proofs/total_loss.md) on a small LoopedLM
    whose embeddings are multiplied by ``scale``, so every state is ~``scale`` times larger
    (:func:`blindspot.diagnostics.radial.total_radial_force`; shapes (K, B, T))."""
    from blindspot.diagnostics.adapter import adapter_for
    from blindspot.diagnostics.radial import total_radial_force

    m = small_lm(seed)
    with torch.no_grad():
        m.tok_emb.weight.mul_(scale)
        m.pos_emb.weight.mul_(scale)
    a = adapter_for(m)
    idx, targets = batch(m)
    with torch.no_grad():
        h0, e = a.start(idx)
    return total_radial_force(a, h0, e, targets)


def kappa_at_init(init: str, seed: int = 0, eps: float = 1e-6, d_model: int = 128,
                  **overrides) -> dict[str, float]:
    """The epsilon-leak gain kappa = eps/(ms(h) + eps) of every loop state at initialization:
    ``init="gpt2"`` (N(0, 0.02^2) weights) or ``"paper"`` (PyTorch's defaults: N(0, 1) token
    and position embeddings). Token + position
    embeddings of variance sigma^2 each give ms(H_0) ~ 2 sigma^2."""
    if init not in ("gpt2", "paper"):
        raise ValueError(f"init must be 'gpt2' or 'paper', got {init!r}")
    m = small_lm(seed, norm_eps=eps, d_model=d_model, n_heads=4, init=init, **overrides)
    idx, _ = batch(m, size=4)
    with torch.no_grad():
        h0, _ = m.embed(idx)
        states = [h0] + m(idx, logits="none").states
    ms = [float(h.pow(2).mean(-1).mean()) for h in states]
    kappas = [float((eps / (h.pow(2).mean(-1) + eps)).mean()) for h in states]
    sigma2 = 1.0 if init == "paper" else 0.02**2
    return {"ms_H0": ms[0], "ms_H0_predicted": 2 * sigma2, "kappa_H0": kappas[0],
            "kappa_H0_predicted": eps / (2 * sigma2 + eps), "kappa_HK": kappas[-1],
            "ms_HK": ms[-1], "eps": eps}


def loop_sublayers(model: LoopedLM):
    """The branches of one loop of ``model`` in order, each a function x -> branch(x) such that
    the loop is x -> x + b_1(x), then + b_2(...), ... (pre-norm or sandwich blocks)."""
    out = []
    for blk in model.blocks:
        out.append(lambda x, b=blk: b.post_attn(b.attn(b.norm_attn(x))))
        out.append(lambda x, b=blk: b.post_mlp(b.mlp(b.norm_mlp(x))))
    return out


def direction_limit_on_lm(model: LoopedLM, idx: Tensor) -> dict[str, float]:
    """One loop of a real LoopedLM (no injection, eps = 0) at its state H_1: the update
    Delta(cH) for several c against Delta(H) and against its limit Delta_inf (every sublayer
    reading N(H)), computed through the exact reparametrization F(t) = sum_i b_i(H + t acc_i)
    at t = 0 (proofs/lemma2.md)."""
    branches = loop_sublayers(model)
    with torch.no_grad():
        h0, e = model.embed(idx)
        h = model.loop_step(h0, e)  # (B, T, d) H_1

        def F(t: float) -> Tensor:
            acc = torch.zeros_like(h)
            for b in branches:
                acc = acc + b(h + t * acc)
            return acc

        delta = {c: model.loop_step(c * h, e) - c * h for c in (1e-2, 1.0, 1e1, 1e2, 1e4)}
        limit = F(0.0)
        out = {f"change_c={c:g}": float((delta[c] - delta[1.0]).norm() / delta[1.0].norm())
               for c in (1e-2, 1e1, 1e4)}
        out.update({f"to_limit_c={c:g}": float((delta[c] - limit).norm() / limit.norm())
                    for c in (1e2, 1e4)})
        out["reparametrization_error"] = max(float((delta[c] - F(1 / c)).norm()
                                                   / delta[c].norm()) for c in (1e-2, 1e1, 1e4))
    return out


@lru_cache(maxsize=8)  # the claims S6.momentum-growth and S6.state-vs-param share a run
def optimizer_stream_norms(optimizer: str, steps: int = 30, seed: int = 0, lr: float = 0.05,
                           ) -> dict[str, tuple[float, ...]]:
    """Train a small untied, eps = 0 LoopedLM with ``optimizer`` ("sgd", "heavy_ball",
    "nesterov" with momentum 0.9, or "adam"; no weight decay, no clipping) on random batches
    and record, before every step and after the last, |P| (the stream-writing group) and the
    token mean of |H_K| on one fixed batch (the same tokens at every step, so a change of
    |H_K| is the change of the parameters, not of the data). With the SGD family |P| never
    decreases (proofs/gd.md); with Adam it can, and |H_K| = |P| phi(P/|P|) need not follow
    |P| in any case."""
    m = small_lm(seed, tie_embeddings=False).train()
    P = stream_parameters(m)
    if optimizer == "adam":
        opt = torch.optim.Adam(m.parameters(), lr=lr)
    elif optimizer in ("sgd", "heavy_ball", "nesterov"):
        mom = 0.0 if optimizer == "sgd" else 0.9
        opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=mom,
                              nesterov=optimizer == "nesterov")
    else:
        raise ValueError(f"optimizer must be sgd, heavy_ball, nesterov or adam, got {optimizer!r}")
    norms, states = [], []
    probe, _ = batch(m, seed=999)  # the fixed batch on which |H_K| is measured
    for t in range(steps + 1):
        idx, targets = batch(m, seed=1000 + t)
        with torch.no_grad():
            norms.append(math.sqrt(sum(float(p.pow(2).sum()) for p in P.values())))
            states.append(float(m(probe, logits="none").states[-1].norm(dim=-1).mean()))
        if t == steps:
            break
        opt.zero_grad(set_to_none=True)
        per_loop_loss(m, idx, targets).backward()
        opt.step()
    return {"P_norm": tuple(norms), "HK_norm": tuple(states)}
