"""The thread choice of ``blindspot train`` and ``blindspot diagnose``: the CPUs available to
the process minus the busy ones, ``--threads N`` and ``OMP_NUM_THREADS`` first, recorded in
the run card."""

import json

import pytest
import torch

from blindspot.train.threads import RULE, available_cpus, choose_threads, threads_for, using


@pytest.mark.parametrize("cpus, load, want", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 1.0, 1), (2, 1.3, 1), (2, 3.7, 1),  # one busy process
    (16, 3.2, 13), (16, 0.6, 15), (1, 0.0, 1), (4, None, 4),  # no load average: all CPUs
])
def test_the_rule_leaves_the_busy_cpus_to_their_processes(cpus, load, want):
    assert threads_for(cpus, load) == want


def test_explicit_threads_win_then_omp_num_threads_then_the_rule():
    assert choose_threads(3, environ={"OMP_NUM_THREADS": "1"}, cpus=2, load=1.0).threads == 3
    c = choose_threads(None, environ={"OMP_NUM_THREADS": "4"}, cpus=2, load=1.0)
    assert (c.threads, c.by) == (4, "OMP_NUM_THREADS")
    c = choose_threads(None, environ={}, cpus=2, load=1.0)
    assert (c.threads, c.by, c.cpus, c.load_1min) == (1, "available CPUs", 2, 1.0)
    assert c.card() == {"threads": 1, "by": "available CPUs", "cpus": 2, "load_1min": 1.0,
                        "rule": RULE}
    assert c.describe() == ("threads: 1 (2 CPUs available, 1-minute load 1.0; --threads N "
                            "to choose)")
    assert choose_threads(None, environ={"OMP_NUM_THREADS": "x"}, cpus=2, load=0.0).threads == 2
    for bad in (0, -1, True):
        with pytest.raises(ValueError, match="--threads must be an integer >= 1"):
            choose_threads(bad, cpus=2, load=0.0)


def test_available_cpus_reads_the_affinity_mask():
    import os

    if hasattr(os, "sched_getaffinity"):
        assert available_cpus() == len(os.sched_getaffinity(0))
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)


def test_using_restores_the_previous_count():
    before = torch.get_num_threads()
    with using(choose_threads(1, cpus=2, load=0.0)):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@pytest.mark.slow
def test_train_records_its_thread_choice_in_the_run_card(tmp_path, monkeypatch, capsys):
    from blindspot.train.cli import main

    monkeypatch.setenv("BLINDSPOT_CACHE", str(tmp_path / "cache"))
    before = torch.get_num_threads()
    assert main(["tiny", "--set", "steps=2", "--threads", "1", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    assert torch.get_num_threads() == before  # the command leaves the caller's count alone
    assert "; threads: 1 (chosen with --threads)" in capsys.readouterr().out
    card = json.loads((tmp_path / "r" / "final.json").read_text())["run_card"]
    assert card["threads"]["threads"] == 1 and card["threads"]["by"] == "--threads"
    assert card["environment"]["torch_threads"] == 1  # what torch used while training
    assert main(["tiny", "--threads", "0", "--out", str(tmp_path / "r0")]) == 2
    assert capsys.readouterr().err == "error: --threads must be an integer >= 1, got 0\n"


def test_thread_benchmark_runs_and_writes_its_ratios(load, tmp_path):
    from pathlib import Path

    bench = load(Path(__file__).resolve().parents[1] / "benchmarks" / "threads.py")
    before = torch.get_num_threads()
    out = bench.main(["--preset", "tiny", "--steps", "1", "--repeats", "2", "--no-busy",
                      "--json", str(tmp_path / "t.json")])
    assert torch.get_num_threads() == before
    assert json.loads((tmp_path / "t.json").read_text()) == json.loads(json.dumps(out))
    counts = [str(n) for n in range(1, out["cpus"] + 1)]
    assert list(out["median_seconds_per_step"]) == counts
    assert all(len(out["seconds_per_step"][n]) == 2 for n in counts)  # one per round
    chosen = str(out["chosen_threads"])
    assert out["relative_to_chosen"][chosen] == 1.0
    assert out["default_over_chosen"] == out["relative_to_chosen"][counts[-1]]
    assert out["busy_processes"] == 0 and out["run_card"]["config"]["repeats"] == 2
