"""Every old spelling the README once showed still works, with a DeprecationWarning that names
the new one: ``readout`` now names only the readout kind (norm / raw / final_only_norm),
``adapter`` only the diagnostics' LoopAdapter and ``scale`` only a state's norm ‖h‖."""

import pytest
import torch

from blindspot.diagnostics import LoopAdapter, adapter_for, record
from blindspot.nn import LoopedLM, ModelConfig
from blindspot.train import config as C

CFG = ModelConfig(vocab_size=32, max_seq_len=8, d_model=16, n_heads=2, n_layers=1, num_loops=3,
                  input_injection="concat")


def _model() -> LoopedLM:
    torch.manual_seed(0)
    return LoopedLM(CFG).eval()


def _idx() -> torch.Tensor:
    return torch.randint(0, CFG.vocab_size, (2, 8), generator=torch.Generator().manual_seed(1))


def test_forward_readout_is_logits():
    m, idx = _model(), _idx()
    with pytest.warns(DeprecationWarning, match=r"forward\(readout=\.\.\.\) is deprecated; use "
                                                r"logits="):
        old = m(idx, readout="last")
    new = m(idx, logits="last")
    assert len(old.logits) == 1 and torch.equal(old.logits[0], new.logits[0])


def test_model_adapter_is_injection_proj():
    m = _model()
    with pytest.warns(DeprecationWarning, match="use LoopedLM.injection_proj"):
        assert m.adapter is m.injection_proj


def test_an_old_checkpoint_with_adapter_keys_loads(tmp_path):
    """Checkpoints written before the rename hold ``adapter.weight``: the model maps the key,
    through ``load_state_dict`` and through ``train.checkpoint.load_model``."""
    from blindspot.train.checkpoint import load_model, save_model
    from blindspot.train.config import preset

    m = _model()
    with torch.no_grad():
        m.injection_proj.weight.normal_()  # not its [I | I] init, so the load is visible
    old = {k.replace("injection_proj.", "adapter."): v for k, v in m.state_dict().items()}
    assert "adapter.weight" in old and not any(k.startswith("injection_proj") for k in old)
    fresh = LoopedLM(CFG)
    fresh.load_state_dict(old)  # strict: every key found
    assert torch.equal(fresh.injection_proj.weight, m.injection_proj.weight)

    cfg = preset("tiny", model={"input_injection": "concat"})
    torch.manual_seed(0)
    model = LoopedLM(cfg.model)
    path = save_model(tmp_path / "old.pt", model, cfg)
    ckpt = torch.load(path, weights_only=True)
    ckpt["model"] = {k.replace("injection_proj.", "adapter."): v for k, v in ckpt["model"].items()}
    torch.save(ckpt, path)
    loaded, _ = load_model(path)
    assert torch.equal(loaded.injection_proj.weight, model.injection_proj.weight)


def test_adapter_readout_is_head():
    new = adapter_for(_model())
    with pytest.warns(DeprecationWarning, match=r"LoopAdapter\(readout=\.\.\.\) is deprecated"):
        old = LoopAdapter(start=new.start, step=new.step, readout=new.head, num_loops=3)
    assert old.head is new.head
    with pytest.warns(DeprecationWarning, match="use LoopAdapter.head"):
        assert new.readout is new.head
    with pytest.raises(TypeError, match="give head= only"), pytest.warns(DeprecationWarning):
        LoopAdapter(start=new.start, step=new.step, head=new.head, readout=new.head,
                    num_loops=3)


def test_from_modules_readout_is_head():
    m = _model()
    with pytest.warns(DeprecationWarning, match=r"from_modules\(readout=\.\.\.\) is deprecated; "
                                                r"use head="):
        old = LoopAdapter.from_modules(m, body="blocks", readout="lm_head", num_loops=3)
    new = LoopAdapter.from_modules(m, body="blocks", head="lm_head", num_loops=3)
    h = torch.randn(2, 8, CFG.d_model)
    assert torch.equal(old.head(h, 1, 3), new.head(h, 1, 3))


def test_record_readout_is_logits():
    m, idx = _model(), _idx()
    with pytest.warns(DeprecationWarning, match=r"record\(readout=\.\.\.\) is deprecated; use "
                                                r"logits="), torch.no_grad():
        old = record(adapter_for(m), idx, readout=False)
    assert old.logits is None and len(old.states) == CFG.num_loops


def test_config_scales_is_sizes():
    with pytest.warns(DeprecationWarning, match="SCALES is deprecated; use SIZES"):
        assert C.SCALES == C.SIZES == ("tiny", "cpu", "44m", "129m")
    with pytest.raises(AttributeError, match="no attribute 'NO_SUCH_NAME'"):
        C.NO_SUCH_NAME  # noqa: B018
