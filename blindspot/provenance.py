"""Atomic file writes and run cards: what every result file records about how it was made.

Every result or checkpoint is written to a temporary file in the same directory and moved
into place with ``os.replace``, so a crash (or SIGKILL) mid-write never leaves a truncated
file where a good one was.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from blindspot import __version__


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same dir, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default)
    return atomic_write_text(path, text + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot serialise {type(o).__name__} to JSON")


def git_revision(cwd: str | os.PathLike | None = None) -> str:
    """The git revision of the working tree, with ``-dirty`` if a tracked file outside
    ``results/`` has changes, or 'unknown'. Result files are left out: an experiment that
    rewrites its own results has not changed the code that produced them."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
             ":(exclude,top)results"],
            cwd=cwd, capture_output=True, text=True, timeout=10,
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict[str, Any]:
    """Versions and hardware that a result depends on."""
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    for mod in ("numpy", "scipy", "sympy", "torch"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except ImportError:
                continue
        env[mod] = getattr(m, "__version__", "unknown")
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
        env["cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
    return env


UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # a run card's created_utc


def parse_utc(stamp: str) -> datetime:
    """A run card's ``created_utc`` stamp as a datetime."""
    return datetime.strptime(stamp, UTC_FORMAT)


def run_card(*, config: Any, seed: int | None, wall_time_s: float | None = None,
             **extra: Any) -> dict[str, Any]:
    """The record every result file carries: config, seed, package version, git revision,
    environment, and when it was made."""
    if hasattr(config, "__dataclass_fields__"):
        from dataclasses import asdict

        config = asdict(config)
    card = {
        "config": config,
        "seed": seed,
        "blindspot_version": __version__,
        "git_revision": git_revision(),
        "environment": environment(),
        "created_utc": time.strftime(UTC_FORMAT, time.gmtime()),
    }
    if wall_time_s is not None:
        card["wall_time_s"] = wall_time_s
    card.update(extra)
    return card
