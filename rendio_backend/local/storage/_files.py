"""Object bytes on disk: `<root>/<bucket>/<key segments...>/@<version>`.

Every upload writes a new version file and never touches an existing one, so a row always
points at complete bytes: the bytes go to a temporary file first, are renamed to their
version path inside the database transaction (before commit) and the version they replace
is removed only after commit. Version files are immutable, so copies and moves can share
bytes through hard links. A reader may still lose the race against that removal; it
re-reads the row and opens the newer version (see `_downloads.with_current_bytes`).

Keys are opaque strings, as in Storage: each `/`-separated segment (and the bucket id) is
mapped to one directory name by `disk_name`, so `.`/`..` segments are never resolved and
key -> path is one-to-one, always inside the bucket's directory. Version files carry an `@`
prefix, a character `disk_name` never emits, so they cannot clash with a key's directory.
(This layout replaced an earlier one that used the raw key; objects stored by a dev stack
before the change are orphaned: their rows answer 404 until uploaded again.)

Private bytes stay private on a shared machine: the root is 0700 and files are 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import anyio

TEMP_MAX_AGE = 3600  # seconds; older temp files are leftovers of a crash
_NAME_MAX = 255  # bytes in one file name (ext4 and most others)


def disk_name(segment: str) -> str:
    """One key segment (or bucket id) as a file name that is never `.`, `..`, hidden or
    holds `/`: percent-encoded, a leading `.` as `%2E`, and `""` as `%` (which percent-
    encoding never yields alone). Distinct segments always get distinct names.

    Storage takes S3-length keys, whose segments can outgrow a file name (255 bytes):
    those are named `#` (which percent-encoding never yields) and their SHA-256."""
    if not segment:
        return "%"
    name = quote(segment, safe="")
    name = "%2E" + name[1:] if name.startswith(".") else name
    if len(name) > _NAME_MAX:
        return "#" + hashlib.sha256(segment.encode()).hexdigest()
    return name


@dataclass
class TempUpload:
    """Bytes received so far: where they are, how many, their MD5 (Storage's eTag)."""

    path: Path
    size: int = 0
    truncated: bool = False
    md5: str = ""


class FileStore:
    """The storage directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / ".tmp"

    def ensure(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.tmp_dir.mkdir(mode=0o700, exist_ok=True)

    def prepare(self) -> None:
        """At startup: create the directory, make it private (also when an older version
        left it 0755) and drop temp files a crash left behind."""
        self.ensure()
        os.chmod(self.root, 0o700)
        cutoff = time.time() - TEMP_MAX_AGE
        for leftover in self.tmp_dir.glob("*.part"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()

    def object_path(self, bucket: str, name: str, version: str) -> Path:
        """Where one version of an object lives (see `disk_name`)."""
        parts = [disk_name(segment) for segment in name.split("/")]
        return self.root.joinpath(disk_name(bucket), *parts, "@" + disk_name(version))

    def version_path(self, bucket: str, name: str, version: str | None) -> Path:
        """`object_path` of a row's version; FileNotFoundError when the row has none."""
        if not version:
            raise FileNotFoundError(name)
        return self.object_path(bucket, name, version)

    def open_version(self, bucket: str, name: str, version: str | None) -> BinaryIO:
        """Open a version's bytes; FileNotFoundError when there are none (no version on
        the row, the file removed by a newer write, or a path that is not a file)."""
        path = self.version_path(bucket, name, version)
        try:
            return open(path, "rb")
        except (IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(name) from None

    async def receive(self, chunks: AsyncIterator[bytes], max_size: int) -> TempUpload:
        """Stream `chunks` into a new temporary file, keeping at most `max_size` bytes."""
        self.ensure()
        upload = TempUpload(self.tmp_dir / f"{uuid.uuid4()}.part")
        digest = hashlib.md5(usedforsecurity=False)
        try:
            fd = os.open(upload.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb") as out:
                async for chunk in chunks:
                    if upload.truncated or not chunk:
                        continue  # keep draining the request, write nothing more
                    room = max_size - upload.size
                    if len(chunk) > room:
                        chunk = chunk[:room]
                        upload.truncated = True
                    # Off the event loop: a 50 MB upload must not stall other requests.
                    await anyio.to_thread.run_sync(out.write, chunk)
                    digest.update(chunk)
                    upload.size += len(chunk)
        except BaseException:
            self.discard(upload.path)
            raise
        upload.md5 = digest.hexdigest()
        return upload

    def place(self, tmp: Path, final: Path) -> None:
        """Move received bytes to their version path (atomic rename on one filesystem)."""
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)

    def share(self, source: Path, final: Path) -> None:
        """Give an existing version file a second name (copy/move); FileNotFoundError when
        the source is gone."""
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, final)
        except FileNotFoundError:
            raise  # the source is gone: copying would fail the same way
        except OSError:  # e.g. a filesystem without hard links
            shutil.copyfile(source, final)
            os.chmod(final, 0o600)

    @contextlib.contextmanager
    def uncommitted(self) -> Iterator[list[Path]]:
        """Collects the files written for a transaction that has not committed yet:
        removed when the block fails (the rollback removes their rows), kept when it
        ends normally, after the commit."""
        written: list[Path] = []
        try:
            yield written
        except BaseException:
            for path in written:
                self.discard(path)
            raise

    def discard(self, path: Path | None) -> None:
        """Remove a file if it exists, then any directories it leaves empty."""
        if path is None:
            return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._prune(path.parent)

    def discard_version(self, bucket: str, name: str, version: str | None) -> None:
        if version:
            self.discard(self.object_path(bucket, name, version))

    def discard_versions(self, bucket: str, rows: list[tuple[str, str | None]]) -> None:
        """`discard_version` for many `(name, version)` pairs (run it in a thread)."""
        for name, version in rows:
            self.discard_version(bucket, name, version)

    def _prune(self, directory: Path) -> None:
        root = self.root.resolve()
        keep = {root, self.tmp_dir.resolve()}
        directory = directory.resolve()
        while directory not in keep and directory.is_relative_to(root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent
