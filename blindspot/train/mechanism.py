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

from blindspot.nn.trace import mechanism_rows, token_stats

PER_LOOP = ("alpha", "beta", "rest", "self_logit", "radial_increment")


@torch.no_grad()
def mechanism_stats(model, x: torch.Tensor, states: list[torch.Tensor] | None = None
                    ) -> dict[str, Any]:
    """The quantities of the module docstring for ``model`` (a ``LoopedLM``, in eval mode) on
    the token ids ``x`` (B, T): each per-loop quantity as a list over loops 1..K. ``states``:
    the H_k of a forward pass of ``x`` already made (the evaluation's), else one is run."""
    h0, _ = model.embed(x)
    states = model(x, logits="none").states if states is None else states
    K, T = len(states), x.shape[1]
    E, W = model.tok_emb.weight, model.lm_head.weight  # (V, d); the same tensor when tied
    w_self = (W[x] - W.mean(0)).float()  # (B, T, d): z[x_t] - mean_v z[v] = <this, features>
    self_logits = [(w_self * model.readout_features(h, k, K).float()).sum(-1)
                   for k, h in enumerate(states, start=1)]  # K x (B, T)
    rows = mechanism_rows(h0, states, E[x], model.pos_emb.weight[:T].unsqueeze(0),
                          self_logits)
    g = model.final_norm.weight.detach().float()
    return {**{q: [r[q] for r in rows] for q in PER_LOOP},
            "scale_K_tokens": token_stats(states[-1].float().norm(dim=-1)),
            "embed_std": E.float().std().item(),
            "pos_std": model.pos_emb.weight.float().std().item(),
            "gain_mean": g.mean().item(), "gain_rms": g.pow(2).mean().sqrt().item()}
