"""The local spool: JSON files written when the DB is unreachable and replayed by a periodic flusher.

As in courier v9: files are named by wall-clock nanoseconds, written without fsync, flushed in name
order every interval, and deleted only after the replay succeeded; the first failure in a directory
ends that pass. Nothing records which files were already replayed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("courier.spool")

Flusher = Callable[[bytes], Awaitable[None]]


def write_to_spool(spool_dir: str, subdir: str, contents: Any) -> Path:
    path = Path(spool_dir, subdir, f"{time.time_ns()}.json")
    path.write_text(json.dumps(contents, indent=2))
    return path


def discard_spooled(spool_dir: str, subdir: str) -> list[str]:
    """Delete a directory's spooled messages unread (the planted `discard_spool_on_start`); their uuids."""
    uuids = []
    for path in sorted(Path(spool_dir, subdir).glob("*.json")):
        try:
            uuids.append(str(json.loads(path.read_bytes()).get("uuid", path.name)))
        except (OSError, ValueError):
            uuids.append(path.name)
        path.unlink(missing_ok=True)
    return uuids


def ensure_spool_dirs(spool_dir: str, subdirs: list[str]) -> None:
    for subdir in subdirs:
        os.makedirs(Path(spool_dir, subdir), mode=0o770, exist_ok=True)


class SpoolFlusher:
    def __init__(self, spool_dir: str, interval_s: float, delete_delay_s: float = 0.0) -> None:
        self._spool_dir = spool_dir
        self._interval_s = interval_s
        self._delete_delay_s = delete_delay_s
        self._flushers: dict[str, Flusher] = {}
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def register(self, subdir: str, flusher: Flusher) -> None:
        self._flushers[subdir] = flusher

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="spool-flusher")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s)
                return
            except TimeoutError:
                pass
            for subdir, flusher in self._flushers.items():
                await self.flush_directory(subdir, flusher)

    async def flush_directory(self, subdir: str, flusher: Flusher) -> int:
        """Replay the directory's files in order; returns how many were flushed before a failure."""
        directory = Path(self._spool_dir, subdir)
        flushed = 0
        try:
            names = sorted(entry.name for entry in os.scandir(directory) if entry.is_file())
        except OSError as exc:
            log.error("reading spool directory %s: %s", directory, exc)
            return 0
        for name in names:
            if self._stopping.is_set():
                break
            if not name.endswith(".json"):
                continue
            path = directory / name
            try:
                contents = path.read_bytes()
            except OSError as exc:
                log.error("reading spool file %s: %s", path, exc)
                continue
            try:
                json.loads(contents)
            except ValueError as exc:
                log.error("unreadable spool file %s, renaming: %s", path, exc)
                path.rename(path.with_name(name + ".error"))
                continue
            try:
                await flusher(contents)
            except Exception as exc:
                log.error("flushing spool file %s: %s", path, exc)
                break
            if self._delete_delay_s > 0:
                await asyncio.sleep(self._delete_delay_s)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.error("removing flushed spool file %s: %s", path, exc)
                break
            log.info("flushed %s", path)
            flushed += 1
        return flushed
