"""Generate the checked-in Python code from sidecar/teleport/wire/*.proto.

Run with `make protos`. The output (`*_pb2.py`, `*_pb2.pyi`, `*_pb2_grpc.py`, `*_pb2_grpc.pyi`) is
committed so that nothing needs protoc at run time; tests/unit/test_wire_generated.py regenerates into
a temporary folder and fails when the committed files are stale.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
WIRE = ROOT / "sidecar" / "teleport" / "wire"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_sources() -> list[Path]:
    """The .proto files we own, sorted for a stable order."""
    return sorted(WIRE.glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Compile every proto into out_dir (mirroring the sidecar/teleport/wire path) and list the outputs."""
    include = str(resources.files("grpc_tools") / "_proto")
    bindir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *(str(p.relative_to(ROOT)) for p in proto_sources()),
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    target = out_dir / "sidecar" / "teleport" / "wire"
    # grpc output for a file without a service is an empty module: leave it out.
    serviceless = {p.stem for p in proto_sources() if "\nservice " not in p.read_text()}
    for stem in serviceless:
        for suffix in ("_pb2_grpc.py", "_pb2_grpc.pyi"):
            (target / f"{stem}{suffix}").unlink(missing_ok=True)
    return sorted(p for p in target.iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> int:
    for stale in WIRE.iterdir():
        if stale.name.endswith(GENERATED_SUFFIXES):
            stale.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        for produced in generate(Path(tmp)):
            shutil.copyfile(produced, WIRE / produced.name)
            print(f"wrote {(WIRE / produced.name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
