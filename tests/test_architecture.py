"""The package's layers point one way: every import in blindspot/ (module-level and inside
functions) goes to its own layer or one below (the picture in blindspot/__init__.py); the
diagnostics stay a library for any looped model; and the tests share only through
tests/conftest.py."""

import ast
import sys
from pathlib import Path

import pytest

import blindspot

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "blindspot"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, at any depth; ``from a import b`` counts as
    importing ``a.b`` (``b`` may be a submodule) and relative imports are resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return found


def layer_of(module: str) -> int | None:
    """Position of ``module`` in :data:`blindspot.LAYERS` (-1: the package root, which
    imports nothing); None outside the package."""
    if module == "blindspot":
        return -1
    parts = module.split(".")
    if parts[0] != "blindspot":
        return None
    return blindspot.LAYERS.index(parts[1]) if parts[1] in blindspot.LAYERS else None


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    loose = [module_name(p) for p in package_files() if layer_of(module_name(p)) is None]
    assert not loose, f"add these to blindspot.LAYERS (and the picture): {loose}"


def test_imports_only_point_down():
    upward = []
    for path in package_files():
        own = layer_of(module_name(path))
        for line, target in imported_modules(path):
            target_layer = layer_of(target)  # None: outside, or the root's __version__
            if target_layer is not None and target_layer > own:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {module_name(path)} "
                              f"({blindspot.LAYERS[own]}) imports {target} "
                              f"({blindspot.LAYERS[target_layer]})")
    assert not upward, "imports that point up a layer:\n  " + "\n  ".join(upward)


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The scan itself: an import of experiments from inside diagnostics, even one hidden in a
    function, is found and placed above its importer."""
    fake = tmp_path / "blindspot" / "diagnostics" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from blindspot.experiments import diagnose\n"
                    "    from ..figures import registry\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = imported_modules(fake)
    assert [t for _, t in found] == ["blindspot.experiments.diagnose",
                                     "blindspot.figures.registry"]
    assert all(layer_of(t) > layer_of("blindspot.diagnostics.fake") for _, t in found)


LIBRARIES = {
    # blindspot.diagnostics: torch, numpy and its own modules (tqdm for its progress bar);
    # from the package only what it builds on: nn (LoopTrace, kernels), toy (the fit of a
    # trace) and provenance (run cards). Never training, experiments or figures.
    "diagnostics": (("blindspot.diagnostics", "blindspot.nn", "blindspot.toy",
                     "blindspot.provenance"), {"torch", "numpy", "tqdm"}),
    # blindspot.control: what a user adds to their own training loop, through the
    # diagnostics' adapter; torch only.
    "control": (("blindspot.control", "blindspot.diagnostics", "blindspot.nn"), {"torch"}),
}


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_the_libraries_for_any_looped_model_need_nothing_above_them(library):
    allowed_blindspot, allowed_outside = LIBRARIES[library]
    stray = []
    for path in sorted((PACKAGE / library).glob("*.py")):
        for line, target in imported_modules(path):
            top = target.split(".")[0]
            if top == "blindspot":
                ok = target.startswith(allowed_blindspot)
            else:
                ok = top in allowed_outside or top in sys.stdlib_module_names
            if not ok:
                stray.append(f"{path.relative_to(ROOT)}:{line}: {target}")
    assert not stray, f"{library} must stay a library:\n  " + "\n  ".join(stray)


def test_the_package_docstring_draws_the_layers_in_order():
    drawn = [line.split()[0] for line in blindspot.__doc__.splitlines()
             if line.startswith("    ") and line.split()[0] in blindspot.LAYERS]
    assert drawn == list(reversed(blindspot.LAYERS))


@pytest.mark.parametrize("path", sorted((ROOT / "tests").glob("*.py")), ids=lambda p: p.name)
def test_tests_share_only_through_conftest(path):
    """No test file imports another file of tests/ (conftest's fixtures are the way to
    share) or a private name of the package."""
    siblings = {p.stem for p in (ROOT / "tests").glob("*.py")}
    bad = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name.split(".")[0] in siblings]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in siblings:
                bad.append(node.module)
            bad += [f"{node.module}.{a.name}" for a in node.names
                    if a.name.startswith("_") and (node.module or "").startswith("blindspot")]
    assert not bad, f"{path.name} imports {bad}"
