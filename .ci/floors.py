"""Print ``name==version`` for the lowest version pyproject.toml allows of each named package.

    python .ci/floors.py uvicorn websockets    # uvicorn==0.53 websockets==16

.ci/run installs these to run the tests that depend on those packages' internals against
the oldest versions the project claims to support, not only against the newest.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def floors(names: list[str], pyproject: Path = PYPROJECT) -> list[str]:
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    lowest: dict[str, str] = {}
    for line in dependencies:
        requirement = Requirement(line)
        for spec in requirement.specifier:
            if spec.operator == ">=":
                lowest[requirement.name.lower()] = spec.version
    missing = [name for name in names if name.lower() not in lowest]
    if missing:
        raise SystemExit(f"pyproject.toml gives no lower bound (>=) for {', '.join(missing)}")
    return [f"{name}=={lowest[name.lower()]}" for name in names]


if __name__ == "__main__":
    print(" ".join(floors(sys.argv[1:])))
