"""Generate rendio_backend/_sync/ from rendio_backend/_async/ with unasync rules only.

    python scripts/generate_sync.py            # rewrite rendio_backend/_sync/
    python scripts/generate_sync.py --check    # exit 1 if rendio_backend/_sync/ is stale

tests/unit/test_library_core.py (test_sync_code_is_generated_from_async) runs the same
generation into a temporary directory and compares, so a forgotten regeneration fails CI.

Only code whose sole async part is awaiting I/O belongs under `_async/`: the token
`asyncio` becomes `time`, so `asyncio.gather`, tasks or locks would generate broken sync
code. Code that is async by nature (the API, the worker) lives elsewhere; generation
refuses any `asyncio.` use but `asyncio.sleep`.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

import unasync

PACKAGE = Path(__file__).resolve().parent.parent / "rendio_backend"

# Names unasync's default rule does not know; `Async<Upper>...` becomes `Sync...` by
# itself (AsyncGoTrueClient, AsyncPostgrestClient, AsyncStorageClient, AsyncBase).
REPLACEMENTS = {
    "AsyncClient": "Client",  # httpx
    "aclose": "close",
    "asyncio": "time",  # `await asyncio.sleep(s)` -> `time.sleep(s)`
    "AsyncRendioClient": "RendioClient",
    "AsyncRendioAdmin": "RendioAdmin",
}
RULES = [unasync.Rule(fromdir="/_async/", todir="/_sync/",
                      additional_replacements=REPLACEMENTS)]


# `asyncio.<anything but sleep>`: async by nature, no sync twin.
_ASYNC_BY_NATURE = re.compile(r"\basyncio\.(?!sleep\b)\w+")


class AsyncByNature(Exception):
    """A file under _async/ uses asyncio beyond sleeping: it has no sync twin."""


def async_by_nature(sources: list[Path]) -> list[str]:
    """`file:line: use` for every asyncio use that unasync cannot translate."""
    found = []
    for path in sources:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in _ASYNC_BY_NATURE.finditer(line):
                found.append(f"{path.name}:{number}: {match[0]}")
    return found


def generate(package: Path) -> list[Path]:
    """Write `package/_sync/*.py` from `package/_async/*.py`; returns the sources."""
    sources = sorted((package / "_async").glob("*.py"))
    problems = async_by_nature(sources)
    if problems:
        raise AsyncByNature("async by nature, keep it out of _async/: " + "; ".join(problems))
    target = package / "_sync"
    if target.exists():
        shutil.rmtree(target)
    unasync.unasync_files([str(path) for path in sources], RULES)
    return sources


def stale_files(package: Path) -> list[str]:
    """Files of package/_sync that differ from a fresh generation (or are missing/extra)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "rendio_backend"
        shutil.copytree(package / "_async", copy / "_async")
        generate(copy)
        fresh = sorted(p.name for p in (copy / "_sync").glob("*.py"))
        committed = sorted(p.name for p in (package / "_sync").glob("*.py"))
        problems = sorted(set(fresh) ^ set(committed))
        for name in sorted(set(fresh) & set(committed)):
            if not filecmp.cmp(copy / "_sync" / name, package / "_sync" / name, shallow=False):
                problems.append(name)
        return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args()
    try:
        return _run(check=args.check)
    except AsyncByNature as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(*, check: bool) -> int:
    if check:
        problems = stale_files(PACKAGE)
        for name in problems:
            print(f"stale: rendio_backend/_sync/{name}", file=sys.stderr)
        return 1 if problems else 0
    for source in generate(PACKAGE):
        print(f"generated rendio_backend/_sync/{source.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
