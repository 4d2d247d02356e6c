"""The local backend's files: listing a folder in S3's key order, and a full disk.

A listing walks only the folders its prefix reaches, lazily, in byte order of the whole key
(:func:`_walk`), as S3 lists; a full disk is :class:`~s3drop._errors.InsufficientStorage`
(:func:`_disk_full`). Which keys may become paths is :func:`s3drop.storage.base.check_key`.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import os
from collections.abc import Iterator

from ..._errors import InsufficientStorage


def _walk(
    base: str, key_prefix: str, rest: str, after: str | None, want: int
) -> Iterator[tuple[str, str]]:
    """``(key, path)`` of each file under the folder ``base`` (whose keys start with
    ``key_prefix``) whose name starts with ``rest`` and whose key, less ``key_prefix``, sorts
    after ``after``: lazily, in byte order of the whole key.

    A folder sorts among the files by its name plus ``/``, which is where its keys fall: ``a/x``
    comes after ``a-b`` and ``a.png`` ('-' and '.' sort before '/'), whatever the folder name's
    own place. Folders that hold only keys at or before ``after`` are never opened. When the
    caller wants a few keys (``want``) of a large folder, only the first few names are put in
    order; the rest only if it reads on.
    """
    names: list[str] = []
    try:
        with os.scandir(base) as entries:
            for entry in entries:
                name = entry.name
                if rest and not name.startswith(rest):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    name += "/"
                    if after is not None and name <= after and not after.startswith(name):
                        continue
                elif after is not None and name <= after:
                    continue
                names.append(name)
    except (FileNotFoundError, NotADirectoryError):
        return
    if want * 4 < len(names):
        first = heapq.nsmallest(want, names)
        yield from _entries(base, key_prefix, after, want, first)
        names = sorted(name for name in names if name > first[-1])
    else:
        names.sort()
    yield from _entries(base, key_prefix, after, want, names)


def _entries(
    base: str, key_prefix: str, after: str | None, want: int, names: list[str]
) -> Iterator[tuple[str, str]]:
    """The files ``names`` (in order) of the folder ``base`` stand for, folders walked."""
    for name in names:
        if name[-1] == "/":
            inner = after[len(name) :] if after is not None and after.startswith(name) else None
            yield from _walk(os.path.join(base, name[:-1]), key_prefix + name, "", inner, want)
        else:
            yield key_prefix + name, os.path.join(base, name)


@contextlib.contextmanager
def _disk_full() -> Iterator[None]:
    """Translate a full disk or a spent quota into :class:`InsufficientStorage`."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage(f"no space left to store the upload: {exc}") from exc
        raise
