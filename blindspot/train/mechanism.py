"""What the self-logit law is about, measured on a batch of a ``LoopedLM`` during training.

Recorded with every evaluation (:func:`blindspot.train.trainer.evaluate`), on its first batch,
in eval mode (no dropout, so no random numbers are drawn and training is unchanged):

- per loop k: the split H_k = α e + β p + r of the state along the current token's embedding
  e = E[x_t] and the position embedding p = P[t]
  (:func:`blindspot.nn.functional.embedding_components`): mean α, mean β, mean ‖r‖;
- per loop k: the *self-logit*, the logit the loop's readout gives the current token x_t,
  centred by the mean logit over the vocabulary (z_k[x_t] − mean_v z_k[v]), mean over tokens;
- per loop k: the mean radial increment a_k = ⟨u_{k-1}, H_k − H_{k-1}⟩ (proofs/lemma2.md),
  with H_0 the embedded input;
- the per-token distribution of ‖H_K‖ (mean, median, p99, max: the paper's Table 10);
- the parameters the law holds fixed: σ_E (std of the token embedding), σ_P (of the position
  embedding), and the readout norm's gain γ (mean and RMS of its entries).

The same quantities for any model with a tied readout, through the diagnostics' adapter:
:func:`blindspot.diagnostics.mechanism.mechanism_table`.
"""

from __future__ import annotations

from typing import Any

import torch

from blindspot.nn.functional import embedding_components, radial_split


def token_quantiles(x: torch.Tensor) -> dict[str, float]:
    """Mean, median, 99th percentile and max of a tensor of per-token values."""
    x = x.detach().double().flatten()
    return {"mean": x.mean().item(), "median": x.median().item(),
            "p99": torch.quantile(x, 0.99).item(), "max": x.max().item()}


@torch.no_grad()
def mechanism_stats(model, x: torch.Tensor) -> dict[str, Any]:
    """The quantities of the module docstring for ``model`` (a ``LoopedLM``, in eval mode) on
    the token ids ``x`` (B, T)."""
    h0, _ = model.embed(x)
    out = model(x, logits="none")
    K = len(out.states)
    T = x.shape[1]
    E, W = model.tok_emb.weight, model.lm_head.weight  # (V, d); the same tensor when tied
    e, p = E[x], model.pos_emb.weight[:T].unsqueeze(0)  # (B, T, d), (1, T, d)
    w_self, w_mean = W[x].float(), W.float().mean(0)  # (B, T, d), (d,)
    per_loop: dict[str, list[float]] = {"alpha": [], "beta": [], "rest": [], "self_logit": [],
                                        "radial_increment": []}
    prev = h0
    for k, h in enumerate(out.states, start=1):
        comp = embedding_components(h, e, p)
        f = model.readout_features(h, k, K).float()  # (B, T, d)
        per_loop["alpha"].append(comp["alpha"].mean().item())
        per_loop["beta"].append(comp["beta"].mean().item())
        per_loop["rest"].append(comp["rest"].mean().item())
        per_loop["self_logit"].append(((w_self - w_mean) * f).sum(-1).mean().item())
        a, _ = radial_split(prev.float(), (h - prev).float())
        per_loop["radial_increment"].append(a.mean().item())
        prev = h
    g = model.final_norm.weight.detach().float()
    return {**per_loop, "scale_K_tokens": token_quantiles(out.states[-1].float().norm(dim=-1)),
            "embed_std": E.float().std().item(),
            "pos_std": model.pos_emb.weight.float().std().item(),
            "gain_mean": g.mean().item(), "gain_rms": g.pow(2).mean().sqrt().item()}
