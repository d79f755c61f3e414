"""A looped model nobody in this project wrote: Hugging Face transformers' ALBERT
(examples/albert.py, randomly initialised, nothing downloaded). The pre-LN form built from
its weights has the blind spot and the monitor must say so (the rule before this one missed
it: every loop's state grew, so ‖H_K‖/‖H_1‖ fell); the post-LN form, ALBERT's own layer, keeps
‖H_k‖ at √d and the monitor must stay silent."""

import math
import warnings
from pathlib import Path

import pytest
import torch

from blindspot.control import BlindSpotWarning, ScaleMonitor, blind_threshold

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def albert_module():
    import importlib.util

    path = ROOT / "examples" / "albert.py"
    spec = importlib.util.spec_from_file_location("albert_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def result(albert_module, tmp_path_factory):
    """The example run once with its defaults (100 steps, every 20), written under tmp."""
    out = tmp_path_factory.mktemp("albert")
    return albert_module.main(["--out", str(out)]), out


@pytest.mark.slow
def test_the_example_writes_its_result(result):
    import json

    res, out = result
    assert json.loads((out / "albert.json").read_text()) == json.loads(json.dumps(res))
    card = res["run_card"]["config"]
    assert card["loops"] == 6 and card["steps"] == 100


@pytest.mark.slow
def test_the_monitor_warns_on_pre_ln_albert_where_the_old_rule_missed(result):
    pre = result[0]["forms"]["pre_ln"]
    recs = pre["monitor"]
    assert pre["warnings"] == 1 and pre["warning_step"] is not None
    fired = next(r for r in recs if r["step"] == pre["warning_step"])
    assert fired["blind"] and fired["carried"] and fired["growth"] >= 2
    # the pattern the ratio rule could not see: the first loop's state grew too (more than
    # 20 %, the old rule's threshold on the ratio), and ‖H_K‖/‖H_1‖ fell after the warning
    assert fired["scale_mean"][0] >= 1.2 * recs[0]["scale_mean"][0]
    assert recs[-1]["loop_ratio"] < fired["loop_ratio"] / 1.2
    assert all(r["blind"] for r in recs)


@pytest.mark.slow
def test_the_monitor_stays_silent_on_post_ln_albert(result):
    post = result[0]["forms"]["post_ln"]
    assert post["warnings"] == 0 and post["warning_step"] is None
    for r in post["monitor"]:
        assert r["blind"]  # the head's LayerNorm hides the scale here too ...
        assert max(abs(c) for c in r["carry"]) < 1e-3  # ... but no loop hands it on
        assert r["growth"] < 1.05  # and the state does not grow (ALBERT's LayerNorms pin it)


@pytest.mark.slow
def test_diagnose_sees_the_blind_spot_in_pre_ln_only(result):
    forms = result[0]["forms"]
    hidden = 128
    for name in ("pre_ln", "post_ln"):
        d = forms[name]["diagnose"]
        assert d["blind"] and d["max_radial_share"] <= blind_threshold(torch.float32)
    post = forms["post_ln"]["diagnose"]["scale_mean"]
    # LayerNorm output with a gain that trained for 100 steps: √d to within 1 %
    assert all(abs(s / math.sqrt(hidden) - 1) < 1e-2 for s in post)
    pre = forms["pre_ln"]["diagnose"]["scale_mean"]
    assert all(b > a for a, b in zip(pre, pre[1:], strict=False))  # the loops add scale
    assert forms["pre_ln"]["diagnose"]["loop_ratio"] > 1.5


@pytest.mark.slow
def test_the_toy_prediction_is_finite_on_both_and_within_target_on_pre_ln(result):
    forms = result[0]["forms"]
    for name in ("pre_ln", "post_ln"):
        rows = forms[name]["diagnose"]["toy_prediction"]
        assert rows and all(math.isfinite(r["predicted"]) for r in rows)
    # the pre-LN scale grows by a near-constant increment per loop: the toy's premise holds
    assert max(r["rel_error"] for r in forms["pre_ln"]["diagnose"]["toy_prediction"]) < 0.2


def test_the_pre_ln_layer_is_albert_s_layer_with_its_norms_moved(albert_module):
    """Same weights in both forms, the reimplemented attention equals ALBERT's own under the
    causal mask, and both forms are causal."""
    post, pre = albert_module.LoopedAlbert("post_ln"), albert_module.LoopedAlbert("pre_ln")
    sd_post, sd_pre = post.state_dict(), pre.state_dict()
    assert sd_post.keys() == sd_pre.keys()
    assert all(torch.equal(sd_post[k], sd_pre[k]) for k in sd_post)
    layer = pre.body.layer
    x = torch.randn(2, 7, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        own, _ = layer.attention(x, albert_module.causal_mask(x))
        ours = layer.attention.LayerNorm(x + pre.body.attend(x))
        # float32: the same products summed by two kernels (SDPA and ALBERT's eager path)
        torch.testing.assert_close(ours, own, rtol=1e-5, atol=1e-5)
        idx = torch.randint(0, 256, (1, 9), generator=torch.Generator().manual_seed(1))
        changed = idx.clone()
        changed[0, -1] = (idx[0, -1] + 1) % 256  # only the last token differs
        for model in (post, pre):
            a, b = model(idx)[-1], model(changed)[-1]
            assert torch.equal(a[:, :-1], b[:, :-1]) and not torch.equal(a[:, -1], b[:, -1])


def _observe_while_growing(albert_module, grow, steps=4):
    model = albert_module.LoopedAlbert("pre_ln")
    monitor = ScaleMonitor(albert_module.adapter_of(model), every=1)
    tk = next(albert_module.byte_batches(0, batch=4, seq=16))
    with warnings.catch_warnings(record=True), torch.no_grad():
        warnings.simplefilter("always", BlindSpotWarning)
        for step in range(steps):
            if step:
                grow(model)
            monitor.observe(step, tk[:, :-1], tk[:, 1:])
    return monitor


def test_parameter_growth_that_does_not_reach_the_state_is_silent(albert_module):
    """Word embeddings 1.5x per observation (3.4x in all): ALBERT's embedding LayerNorm
    removes it before the state. The same growth of the projection after that norm reaches
    the state, and the monitor fires."""
    before = _observe_while_growing(
        albert_module, lambda m: m.prelude[0].word_embeddings.weight.mul_(1.5))
    after = _observe_while_growing(
        albert_module, lambda m: (m.prelude[1].weight.mul_(1.5), m.prelude[1].bias.mul_(1.5)))
    assert before.fired_at is None and before.records[-1]["growth"] < 1.05
    assert after.fired_at is not None and after.records[-1]["growth"] >= 2
    assert all(r["blind"] and r["carried"] for r in before.records + after.records)


def test_readme_hf_adapter_is_the_example_s():
    """The README's Hugging Face adapter call stands verbatim in examples/albert.py, which the
    tests above run, and the README names the extra that installs transformers."""
    import re
    import tomllib

    readme = (ROOT / "README.md").read_text()
    section = readme.split("**A Hugging Face model.**", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)\n```", section, re.S).group(1)
    example = " ".join((ROOT / "examples" / "albert.py").read_text().split())
    assert " ".join(block.split("adapter = ", 1)[1].split()) in example
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert 'pip install -e ".[hf]"' in " ".join(section.split())
    assert any(r.startswith("transformers") for r in extras["hf"])
    assert set(extras["hf"]) <= set(extras["dev"])  # CI installs dev: the ALBERT tests run
