"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import botocore.auth
import botocore.signers
import pytest


@pytest.fixture
def freeze_botocore(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """``freeze_botocore(now)``: botocore signs (boto3's presigned POST, GET and PUT) as if the
    clock said ``now``, until the test ends; what s3drop's own signing is compared with."""

    def freeze(now: datetime) -> None:
        frozen = now.replace(tzinfo=None)  # botocore works in naive UTC
        for module in (botocore.auth, botocore.signers):
            if hasattr(module, "get_current_datetime"):  # botocore >= 1.35
                monkeypatch.setattr(module, "get_current_datetime", lambda *a, **k: frozen)
            else:  # older botocore: datetime.datetime.utcnow()

                class _Frozen(datetime):
                    @classmethod
                    def utcnow(cls) -> datetime:  # type: ignore[override]
                        return frozen

                monkeypatch.setattr(module.datetime, "datetime", _Frozen)

    return freeze
