"""Presets, YAML ``base:`` inheritance, ``--set`` overrides and their error messages."""

import dataclasses
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from blindspot.nn.config import ModelConfig
from blindspot.train import config as C
from blindspot.train.config import ConfigError, DataConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", C.preset_names())
def test_every_preset_loads_and_validates(name):
    cfg = C.load_config(name)
    assert isinstance(cfg.model, ModelConfig) and isinstance(cfg.data, DataConfig)
    assert cfg.model.inter_loop_norm is False  # Table 1 studies recurrence without it


def test_gpu_presets_carry_the_papers_settings():
    c = C.load_config("44m-per_loop-norm")
    m, d = c.model, c.data
    assert (m.d_model, m.n_heads, m.n_layers, m.ff_mult, m.num_loops, m.dropout) == \
        (512, 8, 8, 4.0, 4, 0.1)
    assert (d.seq_len, d.stride, d.tokenizer, d.vocab_size, d.min_freq) == \
        (256, 128, "word", 20000, 2)
    assert (c.batch_size, c.lr, c.weight_decay, c.grad_clip, c.seed) == (64, 3e-4, 0.01, 1.0, 42)
    assert C.recipe_of(c) == "paper"
    big = C.load_config("129m-per_loop-norm")
    assert (big.model.d_model, big.model.n_layers) == (768, 12)
    # everything else is inherited from the 44m file through `base: 44m`
    assert dataclasses.replace(big, model=c.model, name=c.name) == c


def test_the_paper_recipe_is_torchs_adamw_defaults_and_init():
    """One key selects it; it is also what TrainConfig() gives."""
    for c in (TrainConfig(), C.load_config("cpu-per_loop-norm"), C.load_config("tiny"),
              C.load_config("129m-terminal-raw")):
        assert (c.model.init, c.lr_schedule, c.warmup_steps, c.beta1, c.beta2,
                c.weight_decay_on, c.precision) == \
            ("paper", "constant", 0, 0.9, 0.999, "all", "bf16")
        assert C.recipe_of(c) == "paper"


def test_recipe_gpt2_selects_the_whole_contrast_and_explicit_keys_win():
    c = C.load_config("cpu-per_loop-norm", ["recipe=gpt2"])
    assert (c.model.init, c.lr_schedule, c.warmup_steps, c.min_lr_ratio, c.beta2,
            c.weight_decay_on, c.precision) == \
        ("gpt2", "warmup_cosine", 20, 0.1, 0.95, "matrices", "auto")  # 10 % of 200 steps
    assert C.recipe_of(c) == "gpt2"
    assert C.load_config("cpu", ["recipe=gpt2", "steps=1000"]).warmup_steps == 100
    mixed = C.load_config("cpu", ["recipe=gpt2", "model.init=paper", "beta2=0.98"])
    assert (mixed.model.init, mixed.beta2, mixed.lr_schedule) == ("paper", 0.98, "warmup_cosine")
    assert C.recipe_of(mixed) == "gpt2, except model.init=paper, beta2=0.98"
    assert C.preset("cpu-per_loop-raw", recipe="gpt2") == \
        C.load_config("cpu-per_loop-raw", ["recipe=gpt2"])
    with pytest.raises(ConfigError, match="recipe must be one of paper, gpt2"):
        C.load_config("cpu", ["recipe=nanogpt"])


def test_configs_of_blindspot_0_1_are_read_with_its_recipe():
    """A 0.1 config (no lr_schedule key) meant GPT-2 init, warm-up + cosine, decay on matrices;
    upgraded, the committed contrast grid's configs equal today's gpt2 recipe exactly."""
    old = C.to_dict(C.load_config("cpu-per_loop-norm", ["recipe=gpt2"]))
    for key in ("lr_schedule", "weight_decay_on"):
        del old[key]
    del old["model"]["init"]
    up = C.upgrade(old)
    assert (up["model"]["init"], up["lr_schedule"], up["weight_decay_on"]) == \
        ("gpt2", "warmup_cosine", "matrices")
    assert C.from_dict(TrainConfig, up) == C.load_config("cpu-per_loop-norm", ["recipe=gpt2"])
    new = C.to_dict(TrainConfig())
    assert C.upgrade(new) is new  # today's configs pass through


def test_conditions_are_the_seven_of_table1():
    got = {}
    for cond in C.CONDITIONS:
        cfg = C.load_config(f"cpu-{cond}")
        got[cond] = (cfg.supervision, cfg.model.readout, cfg.norm_penalty)
        assert cfg.name == f"cpu-{cond}"
    assert got == {
        "terminal-norm": ("terminal", "norm", 0.0),
        "terminal-raw": ("terminal", "raw", 0.0),
        "per_loop-norm": ("per_loop", "norm", 0.0),
        "per_loop-raw": ("per_loop", "raw", 0.0),
        "per_loop-final_only_norm": ("per_loop", "final_only_norm", 0.0),
        "terminal-penalty": ("terminal", "norm", 0.01),  # the paper's λ = 0.01
        "per_loop-penalty": ("per_loop", "norm", 0.01),
    }
    assert set(C.PAPER_LABELS) == set(C.CONDITIONS)


def test_set_overrides_parse_values_as_yaml():
    cfg = C.load_config("cpu-per_loop-norm", ["model.d_model=64", "lr=2e-3", "data.path=null",
                                              "model.inter_loop_norm=true", "steps=7"])
    assert (cfg.model.d_model, cfg.lr, cfg.data.path, cfg.model.inter_loop_norm, cfg.steps) == \
        (64, 2e-3, None, True, 7)
    assert C.load_config("cpu", ["lr=1"]).lr == 1.0  # an int is accepted for a float
    assert C.load_config("cpu", ["lr=2e-3"]).lr == 2e-3  # YAML 1.1 reads this as a string


def test_attention_kernel_is_a_model_switch_auto_on_the_cpu_presets():
    """The CPU presets train with ``auto`` (blocked attention on a CPU with dropout); every
    other preset keeps torch's SDPA. One --set selects another kernel, and the choice survives
    the YAML round trip."""
    for name in C.preset_names():
        want = "auto" if name == "cpu" or name.startswith("cpu-") else "sdpa"
        assert C.load_config(name).model.attention_kernel == want, name
    cfg = C.load_config("cpu-per_loop-norm", ["model.attention_kernel=explicit"])
    assert cfg.model.attention_kernel == "explicit"
    assert C.from_dict(TrainConfig, yaml.safe_load(C.to_yaml(cfg))) == cfg


def test_every_committed_study_is_a_finished_run_of_its_plan():
    """A config written before ``model.attention_kernel`` (or ``init_embed_std``, ``compile``,
    ``fused_adamw``) existed ran SDPA eagerly: upgraded, it is today's config with those
    values. The studies trained with SDPA pin it, so every committed run is still a finished run
    of its plan (none is retrained, none drops out of its summary); the CPU grid, trained with
    the preset's ``auto``, is one of its plan as it stands."""
    from blindspot.experiments import growth_law, sensitivity
    from blindspot.experiments.grid import SDPA, finished
    from blindspot.experiments.table1 import CONTRASTS, plan_runs

    old = C.to_dict(C.load_config("cpu-per_loop-norm", [SDPA]))
    del old["model"]["attention_kernel"], old["model"]["init_embed_std"]
    del old["compile"], old["fused_adamw"]
    assert C.from_dict(TrainConfig, C.upgrade(old)) == C.load_config("cpu-per_loop-norm", [SDPA])
    res = ROOT / "results"
    plans = {"table1-cpu": plan_runs("cpu"), "table1-converged": plan_runs("converged"),
             "table1-cpu-gpt2": plan_runs("cpu", overrides=CONTRASTS["gpt2"]),
             "table1-cpu-fp32": plan_runs("cpu", seeds=(0,), overrides=("precision=fp32",))}
    for folder, runs in plans.items():
        for key, seed, cfg in runs:
            assert finished(res / folder / "per_run" / f"{key}-seed{seed}", cfg), (folder, key)
    for name, arm in sensitivity.ARMS.items():
        assert finished(res / "sensitivity-cpu" / "per_run" / name, arm.config()), name
    for arm in growth_law.ARMS.values():
        for name, cfg in arm.runs():
            assert finished(res / "growth-law" / "per_run" / name, cfg), name


@pytest.mark.parametrize("item, message", [
    ("model.d_modl=64", r"unknown config key 'model.d_modl' \(did you mean 'model.d_model'\?\); "
                        r"valid keys here: vocab_size, max_seq_len, d_model"),
    ("learning_rate=1e-3", r"unknown config key 'learning_rate'.*valid keys here: name, model"),
    ("model.d_model=big", r"model.d_model expects int; got str 'big'"),
    ("model.d_model=64.5", r"model.d_model expects int; got float 64.5"),
    ("model.inter_loop_norm=1", r"model.inter_loop_norm expects bool; got int 1"),
    ("supervision=dense", r"supervision must be one of per_loop, terminal; got 'dense'"),
    ("model.readout=layernorm", r"model.readout must be one of norm, raw, final_only_norm"),
    ("model.attention_kernel=flash",
     r"model.attention_kernel must be one of sdpa, explicit, blocked, auto; got 'flash'"),
    ("data=3", r"data is a section \(DataConfig\)"),
    ("steps", r"is not KEY=VALUE"),
    ("data.seq_len=512", r"data.seq_len=512 exceeds model.max_seq_len=64"),
    ("lr=-1", r"lr must be a finite number > 0, got -1.0 \(e.g. --set lr=3e-4\)"),
    # a key of another section, and numbers that are not finite (YAML reads "nan" as a string)
    ("d_model=64", r"unknown config key 'd_model' \(did you mean 'model.d_model'\?\)"),
    ("seq_len=64", r"unknown config key 'seq_len' \(did you mean 'data.seq_len'\?\)"),
    ("lr=nan", r"^lr must be a finite number > 0, got nan \(e.g. --set lr=3e-4\)$"),
    ("lr=inf", r"^lr must be a finite number > 0, got inf"),
    ("weight_decay=NaN", r"^weight_decay must be finite and >= 0, got nan$"),
    ("model.n_heads=3", r"not divisible by model.n_heads=3"),
])
def test_bad_overrides_name_the_key_and_the_fix(item, message):
    with pytest.raises(ConfigError, match=message):
        C.load_config("cpu-per_loop-norm", [item])


def test_yaml_files_inherit_through_base(tmp_path):
    (tmp_path / "mine.yaml").write_text("base: cpu-per_loop-raw\nsteps: 11\n"
                                        "model:\n  d_model: 64\n")
    (tmp_path / "child.yaml").write_text("base: mine.yaml\nname: child\nmodel:\n  n_layers: 1\n")
    cfg = C.load_config(str(tmp_path / "child.yaml"), ["seed=5"])
    assert (cfg.name, cfg.steps, cfg.seed, cfg.supervision, cfg.model.readout) == \
        ("child", 11, 5, "per_loop", "raw")
    assert (cfg.model.d_model, cfg.model.n_layers, cfg.model.n_heads) == (64, 1, 4)


def test_broken_yaml_files_are_clear_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="base: cycle"):
        C.load_config(str(tmp_path / "a.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        C.load_config(str(tmp_path / "list.yaml"))
    (tmp_path / "bad.yaml").write_text("model: {d_model: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        C.load_config(str(tmp_path / "bad.yaml"))
    with pytest.raises(ConfigError, match=r"no config file or preset .gpu-huge.; presets: a "
                                          r"size \(tiny, cpu, 44m, 129m\)"):
        C.load_config("gpu-huge")  # nothing close: no guess
    for text in ("", "# only a comment\n"):  # would silently train the default config
        (tmp_path / "empty.yaml").write_text(text)
        with pytest.raises(ConfigError, match="empty.yaml is empty; .*base: tiny"):
            C.load_config(str(tmp_path / "empty.yaml"))


@pytest.mark.parametrize("typo, meant", [("tny", "tiny"), ("cpu-perloop-norm", "cpu-per_loop-norm"),
                                         ("44m-terminal-nrom", "44m-terminal-norm"),
                                         ("cpu-per_loop-raws", "cpu-per_loop-raw")])
def test_a_mistyped_preset_gets_a_did_you_mean(typo, meant):
    with pytest.raises(ConfigError, match=rf"no config file or preset '{typo}' \(did you mean "
                                          rf"'{meant}'\?\); presets: "):
        C.load_config(typo)


@pytest.mark.parametrize("override, message", [
    ("model.norm_eps=-1e-6", "model.norm_eps = -1e-06: must be a finite number >= 0"),
    ("model.dropout=1.0", "model.dropout = 1.0: must be in"),
    ("model.ff_mult=0", "model.ff_mult = 0.0: must be a finite number > 0"),
])
def test_model_values_are_checked_with_the_config(override, message):
    # checked when the config is built, not minutes later when the model is
    with pytest.raises(ConfigError, match=message):
        C.load_config("tiny", [override])


configs = st.builds(
    lambda d, h, loops, readout, sup, lam, lr, seed, tok, path: TrainConfig(
        name="prop", model=ModelConfig(d_model=d * h, n_heads=h, num_loops=loops,
                                       readout=readout,
                                       vocab_size=256 if tok == "byte" else 20000),
        data=DataConfig(tokenizer=tok, path=path), supervision=sup, norm_penalty=lam, lr=lr,
        seed=seed),
    st.integers(1, 16), st.integers(1, 8), st.integers(1, 6),
    st.sampled_from(["norm", "raw", "final_only_norm"]), st.sampled_from(["per_loop", "terminal"]),
    st.floats(0, 1, allow_nan=False), st.floats(1e-6, 1e-1), st.integers(0, 2**31),
    st.sampled_from(["byte", "word"]), st.none() | st.text(min_size=1, max_size=20))


@given(configs)
@settings(max_examples=60, deadline=None)
def test_config_round_trips_through_yaml(cfg):
    back = C.from_dict(TrainConfig, yaml.safe_load(C.to_yaml(cfg)))
    assert back == cfg and hash(back) == hash(cfg)


def test_preset_accepts_python_overrides():
    cfg = C.preset("cpu-terminal-raw", steps=5, model={"d_model": 32})
    assert (cfg.steps, cfg.model.d_model, cfg.model.readout) == (5, 32, "raw")
