"""The import-linter contracts in pyproject.toml cover the whole sidecar, and the error tree is documented whole.

`make lint` runs `lint-imports`, which checks the contracts; these tests check the contracts themselves,
so a new top-level module cannot sit outside every layer and a new error class cannot miss the tree.
"""

from __future__ import annotations

import inspect
import pkgutil
import tomllib
from pathlib import Path
from typing import Any

import sidecar
from sidecar.domain import errors

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _sidecar_children() -> set[str]:
    return {info.name for info in pkgutil.iter_modules(sidecar.__path__)} - {"__main__"}


def test_every_sidecar_module_sits_in_a_layer() -> None:
    [layers] = [c for c in _contracts() if c["type"] == "layers" and c.get("containers") == ["sidecar"]]
    placed = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    assert placed == _sidecar_children()


def test_the_domain_is_forbidden_everything_else_of_ours() -> None:
    [contract] = [c for c in _contracts() if c.get("source_modules") == ["sidecar.domain"]]
    others = {f"sidecar.{name}" for name in _sidecar_children() - {"domain"}}
    assert others | {"fakes", "tests", "tools", "bench"} == set(contract["forbidden_modules"])


def test_every_error_class_is_in_the_documented_tree() -> None:
    doc = errors.__doc__ or ""
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.SidecarError) and obj.__module__ == errors.__name__
    ]
    assert len(classes) > 20
    for cls in classes:
        drawn = f"    {cls.__name__}\n" if cls is errors.SidecarError else f"── {cls.__name__} "
        assert drawn in doc, f"{cls.__name__} is missing from the tree in the docstring"
        # Below the root, every class hangs off a branch that says what to do, not off the root itself.
        if cls is not errors.SidecarError and cls.__bases__ == (errors.SidecarError,):
            assert cls.__name__ in {
                "FatalError",
                "TransientError",
                "PermanentError",
                "CompareFailed",
                "AlreadyExists",
                "StepsFailed",
            }, cls


def test_no_error_class_is_defined_outside_the_tree() -> None:
    strays = []
    for info in pkgutil.walk_packages(sidecar.__path__, "sidecar."):
        if ".wire." in info.name or info.name.endswith("__main__"):
            continue
        module = __import__(info.name, fromlist=["_"])
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Exception)
                and obj.__module__ == info.name
                and info.name != errors.__name__
                and not name.startswith("_")
            ):
                strays.append(f"{info.name}.{name}")
    assert strays == []
