"""``blindspot diagnose`` on checkpoints of our own LoopedLM: tables, run cards, figure, and
clear errors for a missing, corrupt or foreign checkpoint."""

import json

import numpy as np
import pytest
import torch

from blindspot.cli import main as blindspot


@pytest.mark.slow
def test_diagnose_writes_every_table_with_a_run_card(tiny_checkpoint, tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    out = tmp_path / "out"
    assert blindspot(["diagnose", str(ckpt), "--out", str(out), "--no-toy", "--quiet",
                      "--extrapolate", "30"]) == 0
    names = {p.stem for p in out.glob("*.json")}
    assert names == {"scale", "radial_gradient", "lemma2", "scale_sensitivity",
                     "radial_clamp", "early_exit", "halting"}
    lemma2 = json.loads((out / "lemma2.json").read_text())
    assert [r["loop"] for r in lemma2["rows"]] == list(range(1, 31))  # the GPU's K = 30
    card = lemma2["run_card"]
    assert card["config"]["windows"] == 4 and card["config"]["train_config"]["name"]
    assert len(card["config"]["checkpoint_sha256"]) == 64
    assert (out / "diagnostics.png").stat().st_size > 0


def test_several_checkpoints_go_to_their_own_folders(tol, tiny_checkpoint, tmp_path):
    folder = tmp_path / "ckpts"
    tiny_checkpoint(folder / "a.pt")
    tiny_checkpoint(folder / "b.pt", readout="raw")
    out = tmp_path / "out"
    assert blindspot(["diagnose", str(folder), "--out", str(out), "--no-toy", "--quiet",
                      "--no-figure"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["checkpoints"]) == {"a", "b"} and "git_revision" in summary["run_card"]
    assert summary["checkpoints"]["b"]["radial_share_max"] > 1e-2
    raw = json.loads((out / "b" / "radial_gradient.json").read_text())
    norm = json.loads((out / "a" / "radial_gradient.json").read_text())
    # the blind spot through the CLI: at init (‖H‖ ≈ 0.1, so ε/ms(h) ≈ 2e-3) the RMSNorm
    # readout's share is its ε-leak closed form up to float32 round-off; the raw one is O(1)
    for r in norm["rows"]:
        assert r["radial_share"] < 1e-2
        assert r["closed_form_error"] < tol.float32  # float32 gradients
    assert min(r["radial_share"] for r in raw["rows"]) > 1e-2


def test_unusable_checkpoints_are_named(tiny_checkpoint, tmp_path, capsys):
    assert blindspot(["diagnose", str(tmp_path / "missing.pt"), "--quiet"]) == 2
    assert "missing.pt does not exist" in capsys.readouterr().err
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a checkpoint")
    assert blindspot(["diagnose", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err
    # never relay torch's advice to load with weights_only=False (it runs the file's code)
    assert "weights_only" not in err and "trust" not in err
    torch.save({"format": "blindspot-checkpoint", "model": np.arange(3)}, bad)
    assert blindspot(["diagnose", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds a numpy" in err and err.count("\n") == 1
    assert "weights_only" not in err and "trust" not in err
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    assert blindspot(["diagnose", str(foreign), "--quiet"]) == 2
    assert "not a blindspot checkpoint" in capsys.readouterr().err
    ckpt = torch.load(tiny_checkpoint(tmp_path / "mixed.pt"), weights_only=True)
    ckpt["config"]["model"]["d_model"] = 64  # weights of one config under another
    torch.save(ckpt, tmp_path / "mixed.pt")
    assert blindspot(["diagnose", str(tmp_path / "mixed.pt"), "--quiet"]) == 2
    assert "do not fit" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert blindspot(["diagnose", str(tmp_path / "empty"), "--quiet"]) == 2
    assert "holds no *.pt" in capsys.readouterr().err
    ok = tiny_checkpoint(tmp_path / "ok.pt")
    assert blindspot(["diagnose", str(ok), "--quiet", "--windows", "1"]) == 2
    assert "windows must be an int >= 2" in capsys.readouterr().err


def test_gpu_entry_point_runs_on_cpu(tiny_checkpoint, tmp_path):
    from blindspot.experiments.diagnose import diagnose_gpu_checkpoints

    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    got = diagnose_gpu_checkpoints([ckpt], tmp_path / "gpu", device="cpu", progress=False)
    assert len(got["tiny"]["lemma2"].rows) == 30  # the K = 30 Lemma 2 decomposition
    assert (tmp_path / "gpu" / "summary.json").is_file()
    assert (tmp_path / "gpu" / "tiny" / "lemma2.json").is_file()


@pytest.mark.slow
def test_diagnose_says_where_it_wrote_and_keeps_runs_apart(tiny_checkpoint, tmp_path, monkeypatch,
                                                           capsys):
    # two training runs: each writes runs/<run>/checkpoint.pt; K = 1 skips the toy table
    a = tiny_checkpoint(tmp_path / "runs" / "tiny-seed0" / "checkpoint.pt", num_loops=1)
    b = tiny_checkpoint(tmp_path / "runs" / "tiny-seed1" / "checkpoint.pt", readout="raw")
    monkeypatch.chdir(tmp_path)
    assert blindspot(["diagnose", str(a), "--quiet"]) == 0  # with the figure
    assert f"{a}: wrote 8 tables and diagnostics.png to runs/diagnostics-cpu/tiny-seed0/" \
        in capsys.readouterr().err
    assert blindspot(["diagnose", str(b), "--quiet", "--no-figure"]) == 0
    assert "to runs/diagnostics-cpu/tiny-seed1/" in capsys.readouterr().err
    first = json.loads((tmp_path / "runs/diagnostics-cpu/tiny-seed0/scale.json").read_text())
    second = json.loads((tmp_path / "runs/diagnostics-cpu/tiny-seed1/scale.json").read_text())
    assert first["run_card"]["config"]["checkpoint"] == str(a)  # not overwritten by b
    assert first["run_card"]["config"]["threads"]["by"] in ("available CPUs", "OMP_NUM_THREADS")
    assert second["run_card"]["config"]["checkpoint"] == str(b)
    toy = json.loads((tmp_path / "runs/diagnostics-cpu/tiny-seed0/toy_prediction.json")
                     .read_text())
    assert toy["rows"] == [] and toy["notes"].startswith("skipped:")
    assert (tmp_path / "runs/diagnostics-cpu/tiny-seed0/diagnostics.png").stat().st_size
    # two runs whose folders share a name would share an output folder: refused up front
    c = tiny_checkpoint(tmp_path / "elsewhere" / "tiny-seed0" / "checkpoint.pt")
    assert blindspot(["diagnose", str(a), str(c), "--out", "both", "--quiet"]) == 2
    assert "both named 'tiny-seed0'" in capsys.readouterr().err
    assert not (tmp_path / "both").exists()


def test_a_checkpoint_whose_corpus_is_missing_is_one_line(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "wt103").mkdir()
    ckpt = tiny_checkpoint(tmp_path / "wiki.pt",
                       data={"source": "wikitext103", "path": str(tmp_path / "wt103")})
    assert blindspot(["diagnose", str(ckpt), "--quiet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wiki.train.raw is missing" in err
