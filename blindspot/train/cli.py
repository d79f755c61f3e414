"""``blindspot train PRESET [--set key=value ...]``: train one configuration.

Multi-process data parallel: ``torchrun --nproc_per_node N -m blindspot.train.cli PRESET ...``
(gloo on CPU, nccl on GPU; ``batch_size`` is the global batch).
"""

from __future__ import annotations

import argparse
import sys

from blindspot.train.config import ConfigError, load_config, preset_names, to_yaml


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="blindspot train", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets: " + ", ".join(preset_names()))
    p.add_argument("preset", nargs="?",
                   help="preset name (e.g. tiny, cpu-per_loop-norm) or a YAML file path")
    p.add_argument("--preset", dest="preset_option", metavar="PRESET",
                   help="the same, as an option (blindspot train --preset tiny)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set model.d_model=256 (repeatable)")
    p.add_argument("--out", help="output directory (default runs/<name>-seed<seed>)")
    p.add_argument("--no-resume", action="store_true",
                   help="start over even if OUT holds a checkpoint (it is overwritten)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config as YAML and exit")
    args = p.parse_args(argv)
    if (args.preset is None) == (args.preset_option is None):
        print("error: name one preset, e.g. `blindspot train tiny`; presets: "
              + ", ".join(preset_names()), file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.preset or args.preset_option, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    from blindspot.train.checkpoint import CheckpointError
    from blindspot.train.data import DataError
    from blindspot.train.trainer import train

    out = args.out or f"runs/{cfg.name}-seed{cfg.seed}"
    try:
        res = train(cfg, out, progress=not args.no_progress, resume=not args.no_resume)
    except (ConfigError, DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    f = res.final
    if f:
        print(f"{cfg.name}: final-loop ppl {f['ppl_K']:.3f}, ‖H_K‖ {f['scale_K']:.2f} "
              f"(per loop {', '.join(f'{s:.1f}' for s in f['scale'])}); wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
