"""``python -m blindspot.verify --tier quick`` catches real bugs in the model, its readout
switches, the training objective and the scale-sensitivity diagnostic: each bug below is
planted on its own (monkeypatch, undone after the test) and must make the quick-tier claim
that guards it FAIL, while on the package as shipped the same claims PASS."""

import pytest
import torch.nn.functional as F

from blindspot import verify
from blindspot.claims import load_all
from blindspot.diagnostics import interventions
from blindspot.nn import functional as BF
from blindspot.nn.model import LoopedLM, RMSNorm
from blindspot.train import losses

CLAIMS = load_all()


def drop_gain_in_the_kernel(mp):
    mp.setattr(BF, "rms_norm", lambda x, weight=None, eps=0.0:
               F.rms_norm(x, (x.shape[-1],), None, eps))


def drop_gain_in_the_module(mp):
    mp.setattr(RMSNorm, "forward", lambda self, x: BF.rms_norm(x, None, self.eps))


def final_only_norm_normalizes_every_loop(mp):
    def readout_logits(self, h, loop, num_loops):
        for blk in self.coda:
            h = blk(h)
        if self.cfg.readout in ("norm", "final_only_norm"):  # the bug: every loop normalized
            h = self.final_norm(h)
        return self.lm_head(h)

    mp.setattr(LoopedLM, "readout_logits", readout_logits)


def per_loop_ce_is_the_last_loops(mp):
    mp.setattr(losses, "supervision_loss", lambda ce, supervision: ce[-1])


def norm_penalty_summed_over_loops(mp):
    mp.setattr(losses, "norm_penalty",
               lambda states, lam: lam * losses.mean_square_scale(states).sum())


def sensitivity_scales_the_logits(mp):
    mp.setattr(interventions, "scaled_readouts", lambda adapter, h, alphas, loop, num_loops:
               [a * adapter.readout(h, loop, num_loops) for a in alphas])


BUGS = {  # planted bug -> the quick-tier claims that must FAIL with it
    drop_gain_in_the_kernel: {"nn.norms_closed_form", "nn.readout_switches"},
    drop_gain_in_the_module: {"nn.norms_closed_form", "nn.readout_switches"},
    final_only_norm_normalizes_every_loop: {"nn.readout_switches",
                                            "train.objective_radial_force",
                                            "diagnostics.scale_sensitivity_closed_form"},
    per_loop_ce_is_the_last_loops: {"train.objective_loop_weights",
                                    "train.objective_radial_force"},
    norm_penalty_summed_over_loops: {"train.objective_loop_weights",
                                     "train.objective_radial_force"},
    sensitivity_scales_the_logits: {"diagnostics.scale_sensitivity_closed_form"},
}
GUARDS = sorted(set().union(*BUGS.values()))


def test_the_guarding_claims_are_quick_and_pass_on_the_package():
    for cid in GUARDS:
        assert CLAIMS[cid].tier == "quick"
        v = verify.run_claim(CLAIMS[cid])
        assert v.verdict == "PASS", (cid, v.evidence)


@pytest.mark.parametrize("plant", list(BUGS), ids=lambda f: f.__name__)
def test_a_planted_bug_fails_its_claim(plant, monkeypatch):
    plant(monkeypatch)
    for cid in sorted(BUGS[plant]):
        v = verify.run_claim(CLAIMS[cid])
        assert v.verdict == "FAIL", (cid, v.evidence)
        assert not v.evidence.startswith("error:"), v.evidence  # caught by a measurement
