"""rp-archiver settings: real v9 names and defaults, plus stand-in overrides for fast tests.

`ARCHIVER_RETENTION_SECONDS` replaces the day-based `ARCHIVER_RETENTION_PERIOD` when set, and
`ARCHIVER_STANDIN_INTERVAL` runs an archival every N seconds instead of daily at `ARCHIVER_START_TIME`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from standin.mailroom.envreader import EnvReader, SettingError

_TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class ArchiverConfig:
    db: str
    s3_endpoint: str
    s3_bucket: str
    aws_access_key_id: str
    aws_secret_access_key: str
    aws_region: str
    retention: timedelta
    delete: bool
    check_s3_hashes: bool
    archive_messages: bool
    start_time: tuple[int, int]
    once: bool
    interval: float | None


def load_config(environ: Mapping[str, str] | None = None) -> ArchiverConfig:
    env = EnvReader(environ)
    start = env.text("ARCHIVER_START_TIME", "00:01")
    matched = _TIME_OF_DAY.match(start)
    if matched is None:
        raise SettingError(f"ARCHIVER_START_TIME: expected HH:MM (UTC), got {start!r}")
    days = env.integer("ARCHIVER_RETENTION_PERIOD", 90, minimum=0)
    seconds = env.optional_seconds("ARCHIVER_RETENTION_SECONDS")
    return ArchiverConfig(
        db=env.text("ARCHIVER_DB", "postgres://localhost/archiver_test?sslmode=disable"),
        s3_endpoint=env.text("ARCHIVER_S3_ENDPOINT", "https://s3.amazonaws.com"),
        s3_bucket=env.text("ARCHIVER_S3_BUCKET", "temba-archives"),
        aws_access_key_id=env.text("ARCHIVER_AWS_ACCESS_KEY_ID", ""),
        aws_secret_access_key=env.text("ARCHIVER_AWS_SECRET_ACCESS_KEY", ""),
        aws_region=env.text("ARCHIVER_AWS_REGION", "us-east-1"),
        retention=timedelta(seconds=seconds) if seconds is not None else timedelta(days=days),
        delete=env.flag("ARCHIVER_DELETE", False),
        check_s3_hashes=env.flag("ARCHIVER_CHECK_S3_HASHES", True),
        archive_messages=env.flag("ARCHIVER_ARCHIVE_MESSAGES", True),
        start_time=(int(matched.group(1)), int(matched.group(2))),
        once=env.flag("ARCHIVER_ONCE", False),
        interval=env.optional_seconds("ARCHIVER_STANDIN_INTERVAL"),
    )
