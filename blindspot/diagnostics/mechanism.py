"""The self-logit mechanism of a looped model whose readout is tied to its token embedding.

Through a tied readout z = E·f(H) (f: the readout norm, or the identity), the part of a state
along the current token's own embedding e = E[x_t] decodes as the current token: its
*self-logit*. A next-token model must keep that logit small, and a readout that cannot see
‖H‖ lets it do so in three ways, which this table tells apart, loop by loop:

- **dilute**: grow the rest r of H = α e + β p + r (‖r‖ up, α about constant), which lowers
  the self-logit only through the readout norm's 1/rms(H);
- **cancel**: write −e into the stream (α falls towards 0);
- **shrink**: make E itself smaller (σ_E falls; read it from the model's parameters).

Rows k = 1..K: mean α, β, ‖r‖ (:func:`blindspot.nn.functional.embedding_components`), the
centred self-logit z_k[x_t] − mean_v z_k[v], the radial increment a_k and ‖H_k‖
(:func:`blindspot.nn.trace.mechanism_rows`). Works for any model through its
:class:`~blindspot.diagnostics.LoopAdapter` trace (with logits) and its embedding tables;
``tests/test_diagnostics_mechanism.py`` checks it on a hand-built state. During training our
trainer records the same quantities (:mod:`blindspot.train.mechanism`).
"""

from __future__ import annotations

from torch import Tensor

from blindspot.diagnostics.table import Table
from blindspot.nn.trace import LoopTrace, mechanism_rows

MECHANISM_COLUMNS = ["loop", "alpha", "beta", "rest", "self_logit", "radial_increment", "scale"]


def mechanism_table(trace: LoopTrace, idx: Tensor, token_embedding: Tensor,
                    position_embedding: Tensor | None = None) -> Table:
    """The table of the module docstring. ``trace`` must hold every loop's logits (record it
    with ``logits=True``); ``idx`` (B, T) are the input token ids; ``token_embedding`` (V, d)
    is E; ``position_embedding`` (≥ T, d) is P, or None for a model without learned
    positions (then β = 0)."""
    if trace.logits is None or len(trace.logits) != trace.num_loops:
        raise ValueError("mechanism_table needs the logits of every loop: record the trace "
                         "with logits=True")
    if token_embedding.dim() != 2 or token_embedding.shape[1] != trace.initial.shape[-1]:
        raise ValueError(f"token_embedding must be (V, d) with d = {trace.initial.shape[-1]}, "
                         f"got {tuple(token_embedding.shape)}")
    T = idx.shape[1]
    pos = None if position_embedding is None else position_embedding[:T].unsqueeze(0)
    ids = idx.long().unsqueeze(-1)  # (B, T, 1)
    self_logits = [z.gather(-1, ids).squeeze(-1) - z.mean(-1) for z in trace.logits]
    rows = mechanism_rows(trace.initial, list(trace.states), token_embedding[idx], pos,
                          self_logits)
    first, last = rows[0], rows[-1]
    return Table("mechanism", MECHANISM_COLUMNS, rows, notes=(
        f"loop 1 -> {trace.num_loops}: alpha {first['alpha']:.3g} -> {last['alpha']:.3g}, "
        f"rest {first['rest']:.4g} -> {last['rest']:.4g}, self-logit "
        f"{first['self_logit']:.3g} -> {last['self_logit']:.3g}; sigma_E "
        f"{token_embedding.detach().float().std().item():.3g}"))
