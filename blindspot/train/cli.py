"""``blindspot train PRESET [--set key=value ...]``: train one configuration.

Multi-process data parallel: ``torchrun --nproc_per_node N -m blindspot.train.cli PRESET ...``
(gloo on CPU, nccl on GPU; ``batch_size`` is the global batch).

Threads: by default as many as the CPUs available to this process that other processes leave
free (blindspot.train.threads); --threads N chooses. Ctrl-C or SIGTERM writes a checkpoint at
the current step and exits with status 130; the same command resumes. A run that diverges
(a non-finite loss or state) exits with status 1 and one line naming the step, the loop and
the fix.
"""

from __future__ import annotations

import argparse
import signal
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
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads (default: the available CPUs other processes leave "
                        "free; recorded in the run card)")
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
    from blindspot.train import threads
    from blindspot.train.checkpoint import CheckpointError
    from blindspot.train.data import DataError
    from blindspot.train.trainer import NonFiniteError, TrainingInterrupted, train

    try:
        choice = threads.choose_threads(args.threads)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or f"runs/{cfg.name}-seed{cfg.seed}"
    previous = signal.signal(signal.SIGTERM, _terminate)  # until the loop takes it over
    try:
        with threads.using(choice):
            res = train(cfg, out, progress=not args.no_progress, resume=not args.no_resume,
                        run_info={"threads": choice.card()})
    except (ConfigError, DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteError as e:
        print(f"error: training diverged: {e}", file=sys.stderr)
        return 1
    except TrainingInterrupted as e:
        print(f"interrupted at step {e.step}; the same command resumes", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # before the training loop: the last checkpoint (if any) stands
        print("interrupted before training started; nothing was lost, the same command "
              "starts or resumes the run", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    f = res.final
    if f:
        print(f"{cfg.name}: final-loop ppl {f['ppl_K']:.3f}, ‖H_K‖ {f['scale_K']:.2f} "
              f"(per loop {', '.join(f'{s:.1f}' for s in f['scale'])}); wrote {out}; "
              f"{choice.describe()}")
    return 0


def _terminate(signum, frame):
    """SIGTERM outside the training loop: stop as Ctrl-C would."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
