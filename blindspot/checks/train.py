r"""Claims about the training objective, checked on a small ``LoopedLM`` in float64.

The objective is :func:`blindspot.train.losses.objective`, the function the trainer minimizes.
With z_k the logits of loop k = 1..K, p_k = softmax(z_k), N tokens of width d and targets y:

- loop weights: ∂L/∂z_k = w_k (p_k − e_y)/N with w_k = 1/K (``per_loop``) or [k = K]
  (``terminal``), and L = Σ_k w_k CE_k + (λ/K) Σ_k mean(H_k²);
- radial force on the state H_k = s·u through loop k's own readout and the norm penalty
  (H_k held as a leaf, so later loops do not enter):

  .. math:: \langle \nabla_{H_k} L, u \rangle = w_k\,\kappa\,\frac{E_{p}[z] - z_y}{N s}
            + \frac{2 \lambda s}{K N d},

  per token, with κ = 1 through a raw readout and κ = ε/(ms(H_k) + ε) through an RMSNorm
  readout of any gain (zero at ε = 0: the readout blind spot).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from blindspot.checks.nn import nan_as_inf, normalized_at, with_drawn_gains
from blindspot.checks.small import small_inputs, small_model
from blindspot.claims import Outcome, claim
from blindspot.nn import LoopedLM
from blindspot.nn.config import READOUTS
from blindspot.train import losses, trainer
from blindspot.train.config import RECIPES, SUPERVISIONS, TrainConfig, preset

LAMBDAS = (0.0, 0.01)  # without and with the paper's norm penalty
TOL = 1e-10  # float64: ⟨g, u⟩ carries ~d·2.2e-16 ≈ 1e-14 of ‖g‖; a wrong weight is O(1e-6+)
# of it (the smallest: the norm penalty's force, counted K times instead of once)


def loop_weights(supervision: str, num_loops: int) -> list[float]:
    """w_k of the supervision: 1/K at every loop, or 1 at the last loop only."""
    if supervision == "per_loop":
        return [1 / num_loops] * num_loops
    return [0.0] * (num_loops - 1) + [1.0]


def _run(readout: str = "norm", eps: float = 1e-6):
    """(model, detached states H_1..H_K, targets) of a small float64 model with drawn gains."""
    model = with_drawn_gains(small_model(readout=readout, norm_eps=eps))
    with torch.no_grad():
        states = [h.detach() for h in model(small_inputs()).states]
    return model, states, small_inputs(seed=2)


def _ce_parts(z: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(p, E_p[z] − z_y per token, mean CE) of logits z (B, T, V), written out. The gap is
    summed as Σ_j p_j (z_j − z_y): a confident token (p_y ≈ 1, large logits) would lose it to
    cancellation in E_p[z] − z_y."""
    logp = z - torch.logsumexp(z, dim=-1, keepdim=True)  # (B, T, V)
    zy = z.gather(-1, y.unsqueeze(-1))  # (B, T, 1)
    p = logp.exp()
    return p, (p * (z - zy)).sum(-1), -logp.gather(-1, y.unsqueeze(-1)).mean()


def weight_errors() -> dict[tuple[str, float], dict[str, float]]:
    """Per (supervision, λ): the largest error of ∂L/∂z_k against w_k (p_k − e_y)/N (relative
    to ‖(p_k − e_y)/N‖, so a zero weight is measured too) and of L's value."""
    model, states, y = _run()
    K, N = len(states), y.numel()
    with torch.no_grad():
        logits = [model.readout_logits(h, k, K) for k, h in enumerate(states, start=1)]
    out = {}
    for sup in SUPERVISIONS:
        w = loop_weights(sup, K)
        for lam in LAMBDAS:
            zs = [z.clone().requires_grad_(True) for z in logits]
            loss, _ = losses.objective(zs, states, y, sup, lam)
            grads = torch.autograd.grad(loss, zs)
            grad_err, want_loss = 0.0, 0.0
            for k, (z, g) in enumerate(zip(logits, grads, strict=True)):
                p, _, ce = _ce_parts(z, y)
                unit = (p - torch.nn.functional.one_hot(y, z.shape[-1])) / N  # (B, T, V)
                err = ((g - w[k] * unit).norm() / unit.norm()).item()
                grad_err = max(grad_err, nan_as_inf(err))
                want_loss += w[k] * ce.item() + lam / K * states[k].pow(2).mean().item()
            out[(sup, lam)] = {"grad": grad_err, "value": nan_as_inf(
                abs(loss.item() - want_loss) / abs(want_loss))}
    return out


@claim("train.objective_loop_weights",
       "The training objective weights the loops as the supervision says: per-loop CE puts "
       "weight 1/K on every loop's logits and terminal CE weight 1 on the last loop only "
       "(∂L/∂z_k = w_k (softmax(z_k) − e_y)/N), and its value is Σ_k w_k CE_k plus the norm "
       "penalty λ · mean over loops of mean(H_k²).",
       source="package",
       paper_ref="Setup (per-loop CE averaged over the K loops, terminal CE at the last loop, "
                 "norm penalty λ = 0.01)",
       test="tests/test_verify_catches_bugs.py::test_a_planted_bug_fails_its_claim")
def objective_loop_weights() -> Outcome:
    errs = weight_errors()
    worst = max(max(e.values()) for e in errs.values())
    return Outcome(worst <= TOL, f"K = 4 loops, λ in {LAMBDAS}: " + "; ".join(
        f"{sup} λ={lam:g}: gradient error {e['grad']:.1e}, value error {e['value']:.1e}"
        for (sup, lam), e in errs.items()) + f" (need ≤ {TOL:g})")


def radial_force_errors() -> dict[tuple[str, float, str, float], float]:
    """Per (readout, ε, supervision, λ): max over loops of max_tokens |⟨∇_{H_k} L, u⟩ − closed
    form|, relative to the loop's largest per-token ‖∇_{H_k} L‖ or closed form (so that a loop
    the objective wrongly ignores, ∇ = 0, counts as an error of 1)."""
    out = {}
    for readout in READOUTS:
        for eps in (0.0, 1e-6):
            model, states, y = _run(readout, eps)
            K, N, d = len(states), y.numel(), states[0].shape[-1]
            for sup in SUPERVISIONS:
                w = loop_weights(sup, K)
                for lam in LAMBDAS:
                    hs = [h.clone().requires_grad_(True) for h in states]
                    logits = [model.readout_logits(h, k, K) for k, h in enumerate(hs, start=1)]
                    loss, _ = losses.objective(logits, hs, y, sup, lam)
                    grads = torch.autograd.grad(loss, hs)
                    worst = 0.0
                    for k, (h, g, z) in enumerate(zip(states, grads, logits, strict=True), 1):
                        s = h.norm(dim=-1)  # (B, T)
                        force = (g * h).sum(-1) / s  # ⟨∇L, u⟩ per token
                        _, gap, _ = _ce_parts(z.detach(), y)  # E_p[z] − z_y
                        kappa = eps / (s**2 / d + eps) if normalized_at(readout, k, K) \
                            else torch.ones_like(s)
                        want = w[k - 1] * kappa * gap / (N * s) + 2 * lam * s / (K * N * d)
                        # a loop the objective ignores has g = 0 and want = 0: err 0 (0/tiny)
                        scale = torch.maximum(g.norm(dim=-1), want.abs()).max().clamp_min(1e-300)
                        err = (force - want).abs().max() / scale
                        worst = max(worst, nan_as_inf(err.item()))
                    out[(readout, eps, sup, lam)] = worst
    return out


@claim("train.objective_radial_force",
       "The radial force each training objective puts on each loop's state through that loop's "
       "readout matches its closed form w_k κ (E_p[z] − z_y)/(N s) + 2λ s/(K N d): none "
       "through an RMSNorm readout at ε = 0 (κ = 0), the ε-leak κ = ε/(ms(h) + ε) at ε > 0, "
       "κ = 1 through a raw readout (and final_only_norm before the last loop), for per-loop "
       "and terminal CE, with and without the norm penalty.",
       source="package",
       paper_ref="Claims 2-3 and 5 (per-loop CE is blind to the scale through a normalized "
                 "readout; raw readouts and norm penalties see it); Table 3",
       certificate="blindspot.symbolic.identities.EPS_LEAK",
       test="tests/test_verify_catches_bugs.py::test_a_planted_bug_fails_its_claim",
       page="proofs/eps_leak.md")
def objective_radial_force() -> Outcome:
    errs = radial_force_errors()
    worst_key = max(errs, key=errs.get)
    return Outcome(errs[worst_key] <= TOL, (
        f"{len(errs)} objectives (readouts {', '.join(READOUTS)}; ε = 0, 1e-6; per_loop and "
        f"terminal; λ = 0, 0.01) on K = 4 loops: max |radial force − closed form| / max ‖∇_H L‖ "
        f"{errs[worst_key]:.1e} at readout={worst_key[0]}, ε={worst_key[1]:g}, "
        f"{worst_key[2]}, λ={worst_key[3]:g} (needs ≤ {TOL:g})"))


# ------------------------------------------------------------------------------ optimizer


def recipe_lr_factor(recipe: str, step: int, cfg: TrainConfig) -> float:
    """The lr multiplier the recipe states, written out here (not read from the trainer):
    the paper's constant lr; the gpt2 recipe's linear warm-up (s+1)/w over its w steps, then a
    cosine from 1 down to ``min_lr_ratio`` at the last step."""
    if recipe == "paper":
        return 1.0
    w, total, r = cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio
    if step < w:
        return (step + 1) / w
    return r + (1 - r) * (1 + math.cos(math.pi * min(1.0, (step - w) / (total - w)))) / 2


def optimizer_mismatches(recipe: str) -> list[str]:
    """What differs between the AdamW the trainer builds for the ``tiny`` preset under
    ``recipe`` and the recipe (RECIPES): the optimizer class, its betas, the weight decay of
    every parameter (every parameter, norm gains included, for ``paper``; matrices only for
    ``gpt2``), each parameter in exactly one group, and the lr at every step."""
    cfg = preset("tiny", recipe=recipe)
    torch.manual_seed(0)
    model = LoopedLM(cfg.model)
    opt, sched = trainer.optimizer(model, cfg, torch.device("cpu"))
    bad = []
    if type(opt) is not torch.optim.AdamW:
        bad.append(f"optimizer {type(opt).__name__}, not AdamW (decoupled decay)")
    betas = {tuple(g["betas"]) for g in opt.param_groups}
    if betas != {(RECIPES[recipe]["beta1"], RECIPES[recipe]["beta2"])}:
        bad.append(f"betas {sorted(betas)}")
    decay: dict[int, list[float]] = {}
    for g in opt.param_groups:
        for p in g["params"]:
            decay.setdefault(id(p), []).append(g["weight_decay"])
    on_all = RECIPES[recipe]["weight_decay_on"] == "all"
    for name, p in model.named_parameters():
        want = cfg.weight_decay if on_all or p.dim() >= 2 else 0.0
        got = decay.pop(id(p), [])
        if got != [want]:
            bad.append(f"{name}: weight decay {got or 'missing'}, the recipe says [{want:g}]")
    if decay:
        bad.append(f"{len(decay)} optimized tensors are not parameters of the model")
    for step in range(cfg.steps + 1):
        got = opt.defaults["lr"] * sched.lr_lambdas[0](step)
        want = cfg.lr * recipe_lr_factor(recipe, step, cfg)
        if abs(got - want) > 1e-12 * cfg.lr:  # both are a few float64 operations on lr
            bad.append(f"lr at step {step}: {got:.6g}, the recipe says {want:.6g}")
            break
    return bad


@claim("train.optimizer_recipe",
       "The optimizer the trainer builds is the recipe's: AdamW with betas (0.9, 0.999), weight "
       "decay 0.01 on every parameter (norm gains included) and a constant lr under the "
       "paper's recipe; betas (0.9, 0.95), decay on matrices only and a linear warm-up then "
       "cosine lr under the gpt2 recipe.",
       source="package",
       paper_ref="Setup (AdamW, weight decay 0.01 on every parameter, constant lr)",
       test="tests/test_verify_catches_bugs.py::test_a_planted_bug_fails_its_claim")
def optimizer_recipe() -> Outcome:
    found = {recipe: optimizer_mismatches(recipe) for recipe in ("paper", "gpt2")}
    return Outcome(not any(found.values()), "; ".join(
        f"recipe {r}: " + ("AdamW, betas, the decay of every parameter and the lr at every "
                           "step as the recipe says" if not bad else " | ".join(bad[:4]))
        for r, bad in found.items()))
