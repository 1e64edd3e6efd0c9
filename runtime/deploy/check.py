"""The import check of a bundle, run in a throwaway process (`python -m runtime.deploy.check`)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from runtime.core import loader
from runtime.core.bundle import Bundle, check_elsewhere
from runtime.errors import DeployError, LoadError, ManifestError


def precheck(bundle: Bundle, timeout: float = 30.0) -> None:
    """Import the bundle in a throwaway process; raises with file and line on any problem."""
    bundle.function()  # schema errors need no process
    check_elsewhere(bundle.name, ["runtime.deploy.check"], bundle.to_json(), timeout)


def _check_here(bundle: Bundle) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = bundle.materialize(Path(tmp))
        try:
            code = loader.load(bundle.function(), folder)
        except LoadError as e:
            reason = f"cannot load {e.target}: {e.reason}"
            return {"ok": False, "error": reason.replace(f"{folder}/", "functions/")}
        except (ManifestError, DeployError) as e:
            return {"ok": False, "error": str(e)}
        code.purge()
    return {"ok": True}


if __name__ == "__main__":
    print(json.dumps(_check_here(Bundle.from_json(sys.stdin.read()))))
