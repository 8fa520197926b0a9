"""The pure parts of maintenance: `--*-after` ages and the grouping of queued files."""

from __future__ import annotations

from datetime import timedelta

import pytest
import typer

from rendio_backend._core.storage import queued_removals
from rendio_cli.maintenance import parse_age


@pytest.mark.parametrize(("text", "seconds"), [
    ("90d", 90 * 86400), ("2h", 7200), ("1h30m", 5400), ("45s", 45), ("1.5h", 5400),
    ("2w", 14 * 86400), (" 10M ", 600), ("0s", 0),
])
def test_ages(text: str, seconds: int) -> None:
    assert parse_age(text, "--age") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "90", "d", "2 hours", "1h 30m", "-1h", "1y", "h2"])
def test_bad_ages_are_usage_errors(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_age(text, "--age")


def test_queued_files_are_grouped_by_bucket_with_plain_keys() -> None:
    rows = [
        {"id": 1, "bucket": "videos", "path": "videos/u/a.mp4", "job_id": "a"},
        {"id": 2, "bucket": "thumbnails", "path": "u/a.jpg", "job_id": "a"},
        {"id": 3, "bucket": "videos", "path": "/u/b.mp4", "job_id": "b"},
        {"id": 4, "bucket": "videos", "path": "u/../c.mp4", "job_id": "c"},
    ]
    by_bucket, invalid = queued_removals(rows)
    assert by_bucket == {"videos": [(1, "u/a.mp4"), (3, "u/b.mp4")],
                         "thumbnails": [(2, "u/a.jpg")]}
    assert invalid == [(4, "videos/u/../c.mp4")]
