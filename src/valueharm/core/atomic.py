"""Atomic writes: every output appears complete or not at all.

DVC caches whatever a stage leaves behind, so an interrupted stage must not leave a half file.
Each helper writes to a temporary sibling and renames it into place (rename is atomic on POSIX).

A process killed with SIGKILL cannot clean up, so temporary files carry the writer's pid
(`.<name>.<pid>-<random>.tmp`) and later writes remove those whose process is gone. Inside a DVC
repository (the stages' working directory) they are written under `.dvc/tmp/valueharm/` when that
is on the same filesystem as the target (the rename stays atomic), never in the work tree: a rerun
that DVC serves from its run-cache runs none of our code, and a killed writer's partial folder must
not be left beside the outputs. Elsewhere they are siblings of the target. A write that fails
(ENOSPC, a full disk) removes its temporary file and leaves the old file untouched.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


TEMP_HOME = Path(".dvc") / "tmp" / "valueharm"


def _remove_dead(folder: Path, pattern: re.Pattern) -> list[Path]:
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if not match or _alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def temp_home(path: Path) -> Path:
    """Where temporary files for `path` go: `.dvc/tmp/valueharm/` of the DVC repository in the working
    directory when `path` lies inside it on the same filesystem, else `path`'s own folder."""
    root = Path.cwd()
    if not (root / ".dvc").is_dir():
        return path.parent
    try:
        path.parent.resolve().relative_to(root.resolve())
    except ValueError:
        return path.parent
    home = root / TEMP_HOME
    try:
        home.mkdir(parents=True, exist_ok=True)
        if os.stat(home).st_dev == os.stat(path.parent).st_dev:  # e.g. artifacts/ linked to another disk
            return home
    except OSError:
        pass
    return path.parent


def remove_stale_temps(path: Path, home: Path | None = None) -> list[Path]:
    """Remove temporary files of writers that no longer run (killed ones): siblings of `path`, and any
    in the repository's temp home (`temp_home(path)` unless given)."""
    removed = _remove_dead(path.parent, re.compile(rf"^\.{re.escape(path.name)}\.(\d+)-[^/]*\.tmp$"))
    home = temp_home(path) if home is None else home
    if home != path.parent:
        removed += _remove_dead(home, re.compile(r"^\..+\.(\d+)-[^/]*\.tmp$"))
    return removed


def _tmp_sibling(path: Path, directory: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    home = temp_home(path)
    remove_stale_temps(path, home)
    prefix = f".{path.name}.{os.getpid()}-"
    if directory:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=home))
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=home)
    os.close(fd)
    return Path(name)


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _disk_full(path: Path, exc: OSError) -> Exception:
    """A full disk or quota as one line (the old file, if any, is untouched); other errors unchanged."""
    if exc.errno not in DISK_FULL:
        return exc
    from valueharm.core.errors import UserError

    return UserError(
        f"no space left on the device while writing {path} ({os.strerror(exc.errno)}); nothing was half-written",
        "free disk space (or move the DVC cache / VALUEHARM_CACHE elsewhere) and rerun",
    )


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    try:
        tmp = _tmp_sibling(path)
    except OSError as exc:
        raise _disk_full(path, exc) from exc
    try:
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary readable files
        os.replace(tmp, path)
    except OSError as exc:
        raise _disk_full(path, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, fixed indentation, trailing newline (byte-stable)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


# Floats in metrics and report JSON (every JSON file written under reports/) are rounded to this
# many significant digits, so that `dvc metrics diff` shows changes that matter and not float
# noise (a loss that differs in the 7th digit between two CPUs). None = off: full precision.
# Artifacts (artifacts/, JSONL rows) keep full precision; only reports are rounded.
REPORT_JSON_PRECISION: int | None = 6
REPORTS_DIR = "reports"


def round_floats(obj: Any, digits: int) -> Any:
    """A copy of obj with every float rounded to `digits` significant digits (ints, bools, strings kept)."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [round_floats(v, digits) for v in obj]
    return obj


def _under_reports(path: Path) -> bool:
    if not path.is_absolute():
        return path.parts[:1] == (REPORTS_DIR,)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).parts[:1] == (REPORTS_DIR,)
    except ValueError:
        return False


def write_json(path: str | Path, obj: Any, precision: int | None = None) -> Path:
    """Canonical JSON, atomically. Floats are rounded to `precision` significant digits when given,
    else to REPORT_JSON_PRECISION for files under reports/ (when that switch is on)."""
    path = Path(path)
    digits = precision if precision is not None else (REPORT_JSON_PRECISION if _under_reports(path) else None)
    return write_text(path, dumps_json(round_floats(obj, digits) if digits is not None else obj))


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    lines = [json.dumps(r, sort_keys=True, ensure_ascii=False, allow_nan=False) for r in rows]
    return write_text(path, "".join(line + "\n" for line in lines))


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    try:
        tmp = _tmp_sibling(path, directory=True)
    except OSError as exc:
        raise _disk_full(path, exc) from exc
    try:
        try:
            yield tmp
        except OSError as exc:  # e.g. a model save that filled the disk
            raise _disk_full(path, exc) from exc
        os.chmod(tmp, 0o755)  # mkdtemp creates 0700
        # the replaced folder, named like a temp of this pid: a writer killed between the renames leaves it
        # where the next write's stale sweep finds it
        old = tmp.with_name(f".{path.name}.{os.getpid()}-old.tmp")
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def iter_jsonl(
    path: str | Path, fix: str = "write one JSON object per line", *, objects: bool = True
) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of a JSONL file.

    A bad line (not JSON, or not an object when `objects`) or a file that is not UTF-8 is one UserError
    naming the file and the line, with `fix` as what to do: every JSONL reader in the project goes through here.
    """
    from valueharm.core.errors import UserError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text (truncated or corrupt)", fix) from None
    except FileNotFoundError:
        raise UserError(f"{path} not found", fix) from None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} line {number} is not valid JSON ({exc.msg})", fix) from None
        if objects and not isinstance(value, dict):
            raise UserError(f"{path} line {number} is not a JSON object", fix)
        yield number, value


def read_jsonl(path: str | Path) -> list[dict]:
    """The rows of a JSONL artifact; a truncated or corrupt line is one UserError naming file and line."""
    return [row for _, row in iter_jsonl(path, "re-create it: `dvc repro -f` the stage that writes it")]
