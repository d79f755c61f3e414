"""Does YOUR looped model have the readout blind spot? Diagnose a model blindspot does not know.

The model below is a Huginn-style looped transformer written with plain torch layers: a
prelude embeds the tokens, a shared core (concatenate state and prelude output, project,
one pre-norm ``nn.TransformerEncoderLayer``) is applied K times, and a coda (LayerNorm +
linear head) decodes every loop. ``LoopAdapter.from_modules`` names those three submodules;
``diagnose`` then records the same ``LoopTrace`` as for blindspot's own ``LoopedLM`` and
computes every diagnostic table.

    python examples/diagnose_foreign_model.py [--steps 60] [--out runs/diagnostics-foreign]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from blindspot.diagnostics import LoopAdapter, diagnose, write_tables
from blindspot.train.data import ByteTokenizer, generated_text


class CausalLayer(nn.Module):
    """A pre-norm torch encoder layer that only looks back."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True,
                                                norm_first=True)

    def forward(self, x):
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])  # (T, T)
        return self.layer(x, src_mask=mask, is_causal=True)


class Prelude(nn.Module):
    def __init__(self, vocab: int, d: int, seq: int):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)

    def forward(self, idx):
        return self.tok(idx) + self.pos(torch.arange(idx.shape[1]))  # (B, T, d)


class Core(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.inject = nn.Linear(2 * d, d)  # [state, e] -> d
        self.layer = CausalLayer(d, heads)

    def forward(self, xe):
        return self.layer(self.inject(xe))


class MyLoopedModel(nn.Module):
    def __init__(self, vocab=256, d=64, heads=4, seq=64, loops=4):
        super().__init__()
        self.loops = loops
        self.prelude = Prelude(vocab, d, seq)
        self.core = Core(d, heads)
        self.coda = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, vocab))

    def forward(self, idx):
        """Per-loop logits (the model is trained with per-loop cross-entropy)."""
        e = self.prelude(idx)
        h, logits = e, []
        for _ in range(self.loops):
            h = self.core(torch.cat([h, e], dim=-1))
            logits.append(self.coda(h))
        return logits


def batches(seq: int, batch: int, seed: int):
    ids = torch.from_numpy(ByteTokenizer().encode(generated_text(2000, seed=seed)))
    g = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(0, len(ids) - seq - 1, (batch,), generator=g)
        yield ids[starts[:, None] + torch.arange(seq + 1)]  # (B, T+1)


def parser() -> argparse.ArgumentParser:
    """The command line; its defaults write under runs/ only."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60, help="training steps before diagnosing")
    p.add_argument("--out", default="runs/diagnostics-foreign",
                   help="folder for the JSON tables (default runs/diagnostics-foreign)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv=None) -> dict:
    args = parser().parse_args(argv)

    torch.manual_seed(args.seed)
    model = MyLoopedModel()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = batches(seq=64, batch=8, seed=args.seed)
    for _ in range(args.steps):  # a little per-loop CE training, so there is something to see
        tokens = next(data)
        logits = model(tokens[:, :-1])
        loss = sum(F.cross_entropy(z.flatten(0, 1), tokens[:, 1:].flatten())
                   for z in logits) / len(logits)
        opt.zero_grad()
        loss.backward()
        opt.step()

    # The adapter: which submodule is the prelude, the loop body and the head (coda + readout
    # matrix).
    adapter = LoopAdapter.from_modules(model, prelude="prelude", body="core", head="coda",
                                       injection="concat", num_loops=model.loops)
    tables = diagnose(adapter, next(data), extrapolate=2 * model.loops)
    write_tables(tables, Path(args.out), config={"model": "MyLoopedModel",
                                                 "steps": args.steps}, seed=args.seed)
    for name in ("scale", "radial_gradient", "lemma2"):
        print(tables[name].format(digits=3), end="\n\n")
    print(f"wrote {len(tables)} tables to {args.out}/")
    return tables


if __name__ == "__main__":
    main()
