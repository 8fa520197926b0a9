"""Object bytes on disk, laid out like Storage's file backend: `<root>/<bucket>/<key>/<version>`.

Every upload writes a new version file and never touches an existing one, so a row always
points at complete bytes: the bytes go to a temporary file first, are renamed to their
version path inside the database transaction (before commit) and the version they replace
is removed only after commit. Version files are immutable, so copies and moves can share
bytes through hard links.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio

from . import _errors as errors


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
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def object_path(self, bucket: str, name: str, version: str) -> Path:
        """Where one version of an object lives; refuses names that escape the bucket."""
        bucket_dir = (self.root / bucket).resolve()
        if bucket_dir.parent != self.root.resolve():
            raise errors.invalid_bucket_name()
        path = (bucket_dir / name / version).resolve()
        if not path.is_relative_to(bucket_dir) or path == bucket_dir:
            raise errors.invalid_key(name)
        return path

    async def receive(self, chunks: AsyncIterator[bytes], max_size: int) -> TempUpload:
        """Stream `chunks` into a new temporary file, keeping at most `max_size` bytes."""
        self.ensure()
        upload = TempUpload(self.tmp_dir / f"{uuid.uuid4()}.part")
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with open(upload.path, "wb") as out:
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
        """Give an existing version file a second name (copy/move)."""
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, final)
        except OSError:
            shutil.copyfile(source, final)

    def discard(self, path: Path | None) -> None:
        """Remove a file if it exists, then any directories it leaves empty."""
        if path is None:
            return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._prune(path.parent)

    def discard_version(self, bucket: str, name: str, version: str | None) -> None:
        if not version:
            return
        try:
            path = self.object_path(bucket, name, version)
        except errors.StorageApiError:
            return
        self.discard(path)

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
