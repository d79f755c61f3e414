"""``python -m blindspot.verify --tier quick`` catches real bugs in the model, its readout
switches, the training objective, the scale-sensitivity diagnostic and the scale controls:
each bug below is planted on its own (monkeypatch, undone after the test) and must make the
quick-tier claim that guards it FAIL, while on the package as shipped the same claims PASS."""

import contextlib

import pytest
import torch
import torch.nn.functional as F

from blindspot import verify
from blindspot.checks import load_all
from blindspot.control import InterLoopNorm, NormPenalty, RadialClamp, RawReadoutLoss
from blindspot.control import monitor as M
from blindspot.diagnostics import interventions, radial
from blindspot.nn import functional as BF
from blindspot.nn import readout_ce
from blindspot.nn.model import LoopedLM, RMSNorm
from blindspot.train import losses, trainer

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
               [a * adapter.head(h, loop, num_loops) for a in alphas])


def explicit_attention_sees_the_future(mp):  # the causal mask forgotten
    mp.setattr(BF, "explicit_causal_attention", lambda q, k, v, dropout_p=0.0:
               (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1) @ v)


def blocked_attention_drops_earlier_blocks(mp):  # each block sees only its own keys
    real = BF.blocked_causal_attention

    def local(q, k, v, dropout_p=0.0, block=BF.ATTENTION_BLOCK):
        T = q.shape[-2]
        return torch.cat([real(q[..., t:t + block, :], k[..., t:t + block, :],
                               v[..., t:t + block, :], dropout_p, block)
                          for t in range(0, T, block)], dim=-2)
    mp.setattr(BF, "blocked_causal_attention", local)


def eps_gain_without_eps_below(mp):  # κ = ε/ms(h): right only where ms(h) ≫ ε
    mp.setattr(radial, "radial_gain", lambda ms, eps: eps / ms)


def trainer_drops_weight_decay(mp):  # one group, no decay, whatever the recipe says
    mp.setattr(trainer, "param_groups", lambda model, weight_decay, on="all":
               [{"params": list(model.parameters()), "weight_decay": 0.0}])


def chunked_ce_backward_loses_the_target(mp):  # ∂CE/∂z = softmax(z), the − e_y forgotten
    mp.setattr(readout_ce, "ce_logit_grad", lambda logits, targets: torch.softmax(logits, 1))


# -- the scale controls (every control.* claim is guarded)


def threshold_ignores_the_floor(mp):  # every share counts as blind: the raw readout warns
    mp.setattr(M, "blind_threshold", lambda dtype, blind_share=M.BLIND_SHARE: 1.0)


def monitor_drops_its_controls(mp):  # the penalty's radial force goes unmeasured
    mp.setattr(M.ScaleMonitor, "_loop_gradient", lambda self, state, targets, loop, K:
               M.loop_gradient(self.adapter, state, targets, loop, K)[:2])


def carry_never_measured(mp):  # no loop seems to hand its scale on: the blind spot is missed
    measure = M.ScaleMonitor.measure
    mp.setattr(M.ScaleMonitor, "measure",
               lambda self, idx, y: {**measure(self, idx, y), "carry": []})


def one_loop_counted_as_carrying(mp):  # a one-loop model's growth taken for the blind spot
    measure = M.ScaleMonitor.measure

    def carrying(self, idx, y):
        rec = measure(self, idx, y)
        return {**rec, "carry": rec["carry"] or [1.0]}

    mp.setattr(M.ScaleMonitor, "measure", carrying)


def penalty_sums_over_the_width(mp):  # λ‖h‖² instead of λ‖h‖²/n
    mp.setattr(NormPenalty, "per_token", lambda self, h, targets=None:
               self.weight * h.pow(2).sum(-1))


def raw_readout_through_a_norm(mp):  # the auxiliary loss is scale-invariant after all
    logits = RawReadoutLoss.logits
    mp.setattr(RawReadoutLoss, "logits", lambda self, h: logits(
        self, h / h.pow(2).mean(-1, keepdim=True).sqrt()))


def inter_loop_norm_forgets_to_normalize(mp):
    mp.setattr(InterLoopNorm, "norm", lambda self, x: x * self.weight)


def inter_loop_norm_normalizes_e_too(mp):
    forward = InterLoopNorm.forward

    def normalize_all(self, x, *args, **kw):
        if self.injection == "concat":
            from blindspot.nn.functional import rms_norm

            return self.body(rms_norm(x, None, self.eps), *args, **kw)
        return forward(self, x, *args, **kw)

    mp.setattr(InterLoopNorm, "forward", normalize_all)


def clamp_keeps_the_update(mp):
    mp.setattr(RadialClamp, "__call__", lambda self, loop, x, h: h)


def monitor_runs_in_train_mode(mp):  # dropout draws random numbers during the measurement
    mp.setattr(M, "_side_effect_free", lambda model, device: contextlib.nullcontext())


def monitor_accumulates_into_grad(mp):  # a measurement that back-propagates into .grad
    measure_local = M.ScaleMonitor._measure_local

    def leaky(self, idx, targets):
        out = measure_local(self, idx, targets)
        with torch.enable_grad():
            sum(p.pow(2).sum() for p in self.adapter.module.parameters()).backward()
        return out

    mp.setattr(M.ScaleMonitor, "_measure_local", leaky)


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
    explicit_attention_sees_the_future: {"nn.attention_kernels_agree"},
    blocked_attention_drops_earlier_blocks: {"nn.attention_kernels_agree"},
    eps_gain_without_eps_below: {"diagnostics.radial_share_blind_spot"},
    trainer_drops_weight_decay: {"train.optimizer_recipe"},
    chunked_ce_backward_loses_the_target: {"nn.chunked_readout_ce_agrees"},
    threshold_ignores_the_floor: {"control.monitor_verdict"},
    monitor_drops_its_controls: {"control.monitor_verdict"},
    carry_never_measured: {"control.monitor_verdict"},
    one_loop_counted_as_carrying: {"control.monitor_verdict"},
    penalty_sums_over_the_width: {"control.norm_penalty_force"},
    raw_readout_through_a_norm: {"control.raw_readout_force"},
    inter_loop_norm_forgets_to_normalize: {"control.inter_loop_norm_force"},
    inter_loop_norm_normalizes_e_too: {"control.inter_loop_norm_force"},
    clamp_keeps_the_update: {"control.radial_clamp_force"},
    monitor_runs_in_train_mode: {"control.training_unchanged"},
    monitor_accumulates_into_grad: {"control.training_unchanged"},
}
GUARDS = sorted(set().union(*BUGS.values()))


def test_the_guarding_claims_are_quick_and_pass_on_the_package():
    assert {c for c in CLAIMS if c.startswith("control.")} <= set(GUARDS)
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
