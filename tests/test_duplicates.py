"""Duplicates caught before upload: signing answers 409 ``already_uploaded`` with the image the
caller already has, and nothing is signed, posted or stored.

Over HTTP, the app in-process (what it answers is the point, not its process), on the local
backend and on Ceph RGW (posted to over the network); the library's own cases (one storage request,
shared galleries, the same bytes accepted twice) without HTTP.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from s3drop import AlreadyUploaded, S3Drop, Settings
from s3drop._auth import Principal
from s3drop._policy import digest_key
from s3drop.limits import MemoryLimitStore
from s3drop.storage.base import Storage

from . import samples
from .appflow import app_backend, fetch, post
from .conftest import run_async
from .flow import Backend, complete, sign

TOKENS = {"alice": "alice-token-0123456789abcdef", "bob": "bob-token-0123456789abcdef01"}


@pytest.fixture(scope="module", params=["local", "rgw"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    tokens = ",".join(f"{name}:{token}" for name, token in TOKENS.items())
    with app_backend(request, tmp_path_factory, env={"S3DROP_TOKENS": tokens}) as found:
        yield found


def _client(backend: Backend, who: str) -> httpx.Client:
    return backend.server.client(headers={"Authorization": f"Bearer {TOKENS[who]}"})


def _counter(backend: Backend, name: str) -> float:
    """The sum of one counter's samples in the app's ``/metrics``."""
    text = fetch(backend, "/metrics").text
    found = re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, flags=re.MULTILINE)
    return sum(float(value) for value in found)


def _accept(backend: Backend, http: httpx.Client, data: bytes, **extra: Any) -> dict[str, Any]:
    form = sign(http, data, "image/png", **extra)
    post(backend, form, data)
    return complete(http, form["id"])


def _sign_answer(http: httpx.Client, data: bytes, sha256: str | None = None) -> httpx.Response:
    return http.post(
        "/api/uploads",
        json={
            "filename": "again.png",
            "content_type": "image/png",
            "size": len(data),
            "sha256": sha256 or hashlib.sha256(data).hexdigest(),
        },
    )


def test_the_same_bytes_again_are_answered_at_signing_and_nothing_is_sent(
    backend: Backend,
) -> None:
    data = samples.png(101)
    with _client(backend, "alice") as alice:
        image = _accept(backend, alice, data, sha256=hashlib.sha256(data).hexdigest())
        incoming = backend.keys("incoming/")
        signed = _counter(backend, "s3drop_uploads_signed_total")
        received = _counter(backend, "s3drop_received_bytes_total")

        answer = _sign_answer(alice, data)

        assert answer.status_code == 409, answer.text
        body = answer.json()
        assert body["error"]["code"] == "already_uploaded"
        assert "already in your gallery" in body["error"]["message"]
        assert "upload" not in body  # no form: nothing can be posted
        assert body["image"]["id"] == image["id"]
        assert body["image"]["bytes"] == image["bytes"]
        assert body["image"]["filename"] == "upload.bin"
        shown = fetch(backend, body["image"]["url"])
        assert shown.status_code == 200
        assert len(shown.content) == image["bytes"]
        # Nothing signed, nothing received, nothing stored.
        assert _counter(backend, "s3drop_uploads_signed_total") == signed
        assert _counter(backend, "s3drop_uploads_duplicate_total") >= 1
        assert _counter(backend, "s3drop_received_bytes_total") == received
        assert backend.keys("incoming/") == incoming
        listed = alice.get("/api/images", params={"limit": 100}).json()["images"]
        assert [item["id"] for item in listed].count(image["id"]) == 1
        assert len(listed) == len(backend.keys("owners/alice/"))


def test_another_owner_with_the_same_bytes_signs_normally(backend: Backend) -> None:
    data = samples.png(102)
    with _client(backend, "alice") as alice, _client(backend, "bob") as bob:
        _accept(backend, alice, data)
        answer = _sign_answer(bob, data)
        assert answer.status_code == 201, answer.text
        assert "upload" in answer.json()


def test_a_deleted_image_no_longer_counts(backend: Backend) -> None:
    data = samples.png(103)
    digest = hashlib.sha256(data).hexdigest()
    with _client(backend, "alice") as alice:
        image = _accept(backend, alice, data)
        assert backend.keys(digest_key("alice", digest)) == [digest_key("alice", digest)]
        assert _sign_answer(alice, data).status_code == 409
        assert alice.delete(f"/api/images/{image['id']}").status_code == 204
        assert backend.keys(digest_key("alice", digest)) == []
        answer = _sign_answer(alice, data)
        assert answer.status_code == 201, answer.text


def test_the_marker_is_the_servers_hash_never_the_clients_claim(backend: Backend) -> None:
    claimed, sent = samples.png(104), samples.png(105)
    claimed_digest = hashlib.sha256(claimed).hexdigest()
    with _client(backend, "alice") as alice:
        # A client that claims another image's checksum: refused at completion, no marker.
        form = sign(alice, sent, "image/png", sha256=claimed_digest)
        post(backend, form, sent)
        refused = alice.post(f"/api/uploads/{form['id']}/complete")
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "checksum_mismatch"
        assert backend.keys(digest_key("alice", claimed_digest)) == []
        assert _sign_answer(alice, claimed).status_code == 201
        # A client that claims nothing: the server hashes what arrived, and that is the marker.
        image = _accept(backend, alice, sent)
        assert backend.keys(digest_key("alice", claimed_digest)) == []
        answer = _sign_answer(alice, sent)
        assert answer.status_code == 409
        assert answer.json()["image"]["id"] == image["id"]
        assert _sign_answer(alice, claimed).status_code == 201


# --- the library ----------------------------------------------------------------------------


class _Counting:
    """A storage that counts the requests made through it."""

    REQUESTS = frozenset({"head", "read", "put", "delete", "list_objects", "iter_all"})

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in self.REQUESTS:
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return counted


def _drop(tmp_path: Path, **settings: Any) -> S3Drop:
    return S3Drop(Settings(data_dir=tmp_path, **settings), limit_store=MemoryLimitStore())


ALICE = Principal("alice")
BOB = Principal("bob")


def _promote(drop: S3Drop, data: bytes, who: Principal) -> str:
    """Sign, store the file as storage would, complete; the image id."""
    form = drop.presign(content_type="image/png", size=len(data), filename="a.png", principal=who)
    metadata = {
        name.removeprefix("x-amz-meta-"): value
        for name, value in form.fields.items()
        if name.startswith("x-amz-meta-")
    }
    drop.storage.put(form.key, data, content_type="image/png", metadata=metadata)
    return drop.complete(form.id).id


def test_signing_costs_one_storage_request_with_a_checksum_and_none_without(
    tmp_path: Path,
) -> None:
    drop = _drop(tmp_path)
    data = samples.png(106)
    _promote(drop, data, ALICE)
    counting = _Counting(drop.storage)
    drop.storage = counting  # type: ignore[assignment]
    digest = hashlib.sha256(data).hexdigest()
    with pytest.raises(AlreadyUploaded) as caught:
        drop.presign(
            content_type="image/png",
            size=len(data),
            filename="b.png",
            sha256=digest,
            principal=ALICE,
        )
    assert caught.value.status == 409
    assert counting.calls == ["head"]
    counting.calls.clear()
    drop.presign(
        content_type="image/png", size=len(data), filename="b.png", sha256="0" * 64, principal=ALICE
    )
    assert counting.calls == ["head"]
    counting.calls.clear()
    drop.presign(content_type="image/png", size=len(data), filename="b.png", principal=ALICE)
    assert counting.calls == []


def test_a_shared_gallery_still_finds_duplicates_per_owner(tmp_path: Path) -> None:
    drop = _drop(tmp_path, shared=True)
    data = samples.png(107)
    digest = hashlib.sha256(data).hexdigest()
    image_id = _promote(drop, data, ALICE)
    assert drop.find_duplicate("alice", digest) is not None
    assert drop.find_duplicate("alice", digest).id == image_id  # type: ignore[union-attr]
    assert drop.find_duplicate("bob", digest) is None
    drop.presign(
        content_type="image/png", size=len(data), filename="b.png", sha256=digest, principal=BOB
    )


def test_the_same_bytes_accepted_twice_keep_a_marker_until_both_are_deleted(
    tmp_path: Path,
) -> None:
    # Two forms signed before either was completed (no sha256 sent: nothing to find at signing).
    drop = _drop(tmp_path)
    data = samples.png(108)
    digest = hashlib.sha256(data).hexdigest()
    first = _promote(drop, data, ALICE)
    second = _promote(drop, data, ALICE)
    found = drop.find_duplicate("alice", digest)
    assert found is not None
    assert found.id == second
    drop.delete_image(first, principal=ALICE)
    found = drop.find_duplicate("alice", digest)
    assert found is not None
    assert found.id == second
    drop.delete_image(second, principal=ALICE)
    assert drop.find_duplicate("alice", digest) is None
    assert drop.storage.head(digest_key("alice", digest)) is None


@pytest.mark.parametrize(
    ("settings", "expected"),
    [({}, (None, 85)), ({"client_max_side": 1600, "client_quality": 72}, (1600, 72))],
)
def test_the_downscale_settings_reach_the_element(
    tmp_path: Path, settings: dict[str, Any], expected: tuple[int | None, int]
) -> None:
    from s3drop.web.app import create_app

    app = create_app(Settings(data_dir=tmp_path, **settings), limit_store=MemoryLimitStore())

    async def get_config() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            answer: dict[str, Any] = (await http.get("/api/config")).json()
        return answer

    config = run_async(get_config())
    assert (config["client_max_side"], config["client_quality"]) == expected
