"""DVC stage entry points: `python -m stages.<name>`. Each reads params, calls the library, writes outs.

dvc.yaml runs `python` from PATH. When that interpreter cannot import valueharm (the venv is not
activated, e.g. `.venv/bin/dvc exp run ...`), the stage re-runs itself under the project's
`.venv/bin/python`; without one it stops with one line saying what to do.
"""

import os
import sys
from pathlib import Path


def _ensure_project_python() -> None:
    try:
        import valueharm  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        return
    venv = Path(__file__).resolve().parent.parent / ".venv"
    python = venv / "bin" / "python"
    if python.exists() and Path(sys.prefix).resolve() != venv.resolve() and not os.environ.get("VALUEHARM_REEXEC"):
        os.environ["VALUEHARM_REEXEC"] = "1"
        os.execv(str(python), [str(python), *sys.orig_argv[1:]])
    print(
        f"error: {sys.executable} cannot import valueharm; activate .venv (source .venv/bin/activate) or run `make venv`",
        file=sys.stderr,
    )
    sys.exit(2)


_ensure_project_python()
