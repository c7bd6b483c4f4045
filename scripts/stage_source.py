"""Stage the functions' source for `gcloud functions deploy --source`: runtime code and runtime pins only.

requirements.txt pins everything in three sections: what Google Cloud mode imports, then
`# embedded backends only` (DuckDB and sqlglot, which only the local stand-ins load), then
`# tests and checks`. Cloud Functions builds install the requirements.txt they find, so the
staged copy keeps only the first section: smaller images, faster builds and cold starts, no
66 MB DuckDB library and no test tools in production.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_PATHS = ("main.py", "functions", "shared", "schemas", "configs")
DEV_MARKER = "# tests and checks"
EMBEDDED_MARKER = "# embedded backends only"
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc")


def runtime_requirements(text: str) -> str:
    """The requirements above EMBEDDED_MARKER (or DEV_MARKER); fails if DEV_MARKER is missing, so nothing is dropped silently."""
    lines = text.splitlines()
    if DEV_MARKER not in lines:
        raise ValueError(f"requirements.txt has no '{DEV_MARKER}' line separating runtime from development pins")
    end = min(lines.index(marker) for marker in (EMBEDDED_MARKER, DEV_MARKER) if marker in lines)
    return "\n".join(lines[:end]).rstrip() + "\n"


def stage(target: Path, root: Path = ROOT) -> list[str]:
    """Replace `target` with the runtime source tree; returns the staged top-level names."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in RUNTIME_PATHS:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=_SKIPPED)
        else:
            shutil.copy2(source, target / name)
    (target / "requirements.txt").write_text(runtime_requirements((root / "requirements.txt").read_text()))
    return [*RUNTIME_PATHS, "requirements.txt"]


def main() -> None:
    """Stage into the directory given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path)
    stage(parser.parse_args().target)


if __name__ == "__main__":
    main()
