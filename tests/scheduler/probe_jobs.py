"""A job for the scheduler tests: appends "<token> <pid>" to a file, so a test sees who ran it and how often."""
from __future__ import annotations

import os


async def record_fire(path: str, token: str, *, ctx=None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{token} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


async def record_context(path: str, *, ctx=None) -> None:
    """Writes the database URL of the JobContext it was given ("none" without one)."""
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, (ctx.database_url if ctx is not None else "none").encode())
    finally:
        os.close(fd)
    os.replace(path + ".tmp", path)         # the test sees the file only when it is complete
