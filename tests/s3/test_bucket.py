"""`s3drop bucket init` and `s3drop bucket doctor` against Ceph RGW, through the CLI."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cli_inprocess import run_cli
from tests.conftest import RGW

ORIGINS = ["http://127.0.0.1:8000", "http://localhost:8000"]


def s3drop(
    rgw: RGW, bucket: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``s3drop bucket *args`` on ``bucket``, in this process (what the command does is the
    point here; ``test_bucket_commands_need_a_bucket`` runs the real process)."""
    return run_cli("bucket", *args, env={**rgw.env(bucket), **(env or {})})


def outcomes(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return {step["name"]: step["outcome"] for step in json.loads(result.stdout)}


@pytest.fixture
def new_bucket(rgw: RGW) -> Iterator[str]:
    """A bucket name nobody created yet; the bucket is removed after the test if it was made."""
    name = f"t-new-{secrets.token_hex(5)}"
    yield name
    client = rgw.client()
    try:
        objects = client.list_objects_v2(Bucket=name).get("Contents", [])
    except client.exceptions.NoSuchBucket:
        return
    for item in objects:
        client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)


def test_init_then_doctor_on_a_fresh_bucket(rgw: RGW, new_bucket: str) -> None:
    first = s3drop(rgw, new_bucket, "init")
    assert first.returncode == 0, first.stdout + first.stderr
    for step in ("bucket", "public access", "CORS", "lifecycle"):
        assert step in first.stdout
    assert "created" in first.stdout
    assert "unchanged" not in first.stdout

    client = rgw.client()
    (rule,) = client.get_bucket_cors(Bucket=new_bucket)["CORSRules"]
    assert sorted(rule["AllowedOrigins"]) == ORIGINS
    assert sorted(rule["AllowedMethods"]) == ["GET", "HEAD", "POST", "PUT"]
    assert sorted(rule["AllowedHeaders"]) == [
        "Content-Type",
        "x-amz-checksum-sha256",
        "x-amz-content-sha256",
        "x-amz-meta-*",
    ]
    assert rule["ExposeHeaders"] == ["ETag", "Location"]
    block = client.get_public_access_block(Bucket=new_bucket)["PublicAccessBlockConfiguration"]
    # RGW refuses even the owner's PutObject under BlockPublicAcls (s3drop must put to promote),
    # so init keeps that one off there; IgnorePublicAcls still makes any public ACL inert.
    assert block == {
        "BlockPublicAcls": False,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert "BlockPublicAcls off" in first.stdout
    client.put_object(Bucket=new_bucket, Key="images/owner-can-write.png", Body=b"x")
    client.delete_object(Bucket=new_bucket, Key="images/owner-can-write.png")
    (expiry,) = client.get_bucket_lifecycle_configuration(Bucket=new_bucket)["Rules"]
    assert expiry["Filter"] == {"Prefix": "incoming/"}
    assert expiry["Expiration"] == {"Days": 1}
    assert expiry["Status"] == "Enabled"

    doctor = s3drop(rgw, new_bucket, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "FAIL" not in doctor.stdout
    assert "skipped" not in doctor.stdout
    checks = json.loads(s3drop(rgw, new_bucket, "doctor", "--json").stdout)
    names = [check["name"] for check in checks]
    assert names[:6] == [
        "credentials",
        "bucket access",
        "CORS",
        "public access",
        "server writes",
        "lifecycle",
    ]
    assert len([name for name in names if name.startswith("enforcement")]) == 4
    assert all(check["ok"] for check in checks), checks
    details = {check["name"]: check["detail"] for check in checks}
    assert details["enforcement: refuses a body over the limit"].startswith("400")
    assert details["enforcement: refuses a body under the signed size"].startswith(
        "400 EntityTooSmall"
    )
    assert details["enforcement: refuses a wrong Content-Type"].startswith("403")
    assert client.list_objects_v2(Bucket=new_bucket).get("Contents", []) == []


def test_init_twice_changes_nothing_the_second_time(rgw: RGW, new_bucket: str) -> None:
    assert set(outcomes(s3drop(rgw, new_bucket, "init", "--json")).values()) == {
        "created",
        "updated",
    }
    client = rgw.client()
    before = (
        client.get_bucket_cors(Bucket=new_bucket)["CORSRules"],
        client.get_bucket_lifecycle_configuration(Bucket=new_bucket)["Rules"],
    )
    again = s3drop(rgw, new_bucket, "init")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("unchanged") == 4
    assert "updated" not in again.stdout
    assert "created" not in again.stdout
    assert outcomes(s3drop(rgw, new_bucket, "init", "--json")) == dict.fromkeys(
        ["bucket", "public access", "CORS", "lifecycle"], "unchanged"
    )
    after = (
        client.get_bucket_cors(Bucket=new_bucket)["CORSRules"],
        client.get_bucket_lifecycle_configuration(Bucket=new_bucket)["Rules"],
    )
    assert after == before


def test_init_keeps_rules_it_does_not_own_and_adds_origins(rgw: RGW, bucket: str) -> None:
    client = rgw.client()
    theirs_cors: dict[str, Any] = {
        "ID": "theirs",
        "AllowedOrigins": ["https://other.example"],
        "AllowedMethods": ["GET"],
    }
    theirs_expiry: dict[str, Any] = {
        "ID": "theirs",
        "Filter": {"Prefix": "tmp/"},
        "Status": "Enabled",
        "Expiration": {"Days": 7},
    }
    client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [theirs_cors]})
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [theirs_expiry]}
    )
    assert outcomes(s3drop(rgw, bucket, "init", "--json"))["bucket"] == "unchanged"
    env = {"S3DROP_PORT": "8123", "S3DROP_ALLOWED_ORIGINS": "https://drop.example.com"}
    steps = outcomes(s3drop(rgw, bucket, "init", "--json", env=env))
    assert steps["CORS"] == "updated"
    assert steps["lifecycle"] == "unchanged"
    rules = {rule.get("ID"): rule for rule in client.get_bucket_cors(Bucket=bucket)["CORSRules"]}
    assert set(rules) == {"theirs", "s3drop"}
    assert rules["theirs"]["AllowedOrigins"] == ["https://other.example"]
    # Added, never taken away: the app on port 8000 still works after one on 8123 was set up.
    assert sorted(rules["s3drop"]["AllowedOrigins"]) == [
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8123",
        "http://localhost:8000",
        "http://localhost:8123",
        "https://drop.example.com",
    ]
    expiries = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert sorted(rule["ID"] for rule in expiries) == ["s3drop-expire-quarantine", "theirs"]
    assert s3drop(rgw, bucket, "doctor", env=env).returncode == 0


def test_doctor_fails_and_says_cors_when_cors_is_gone(rgw: RGW, bucket: str) -> None:
    assert s3drop(rgw, bucket, "init").returncode == 0
    rgw.client().delete_bucket_cors(Bucket=bucket)
    doctor = s3drop(rgw, bucket, "doctor")
    assert doctor.returncode != 0
    (row,) = [line for line in doctor.stdout.splitlines() if "CORS" in line and "│" in line]
    assert "FAIL" in row
    assert "s3drop bucket init" in row
    assert "failed: CORS" in doctor.stderr
    checks = {c["name"]: c for c in json.loads(s3drop(rgw, bucket, "doctor", "--json").stdout)}
    assert not checks["CORS"]["ok"]
    assert [name for name, c in checks.items() if not c["ok"]] == ["CORS"]


def test_doctor_fails_for_another_origin(rgw: RGW, bucket: str) -> None:
    assert s3drop(rgw, bucket, "init").returncode == 0
    doctor = s3drop(rgw, bucket, "doctor", "--origin", "https://elsewhere.example")
    assert doctor.returncode != 0
    assert "failed: CORS" in doctor.stderr
    assert "https://elsewhere.example" in doctor.stdout


def test_doctor_without_lifecycle_or_public_block(rgw: RGW, bucket: str) -> None:
    assert s3drop(rgw, bucket, "init").returncode == 0
    client = rgw.client()
    client.delete_bucket_lifecycle(Bucket=bucket)
    client.delete_public_access_block(Bucket=bucket)
    doctor = s3drop(rgw, bucket, "doctor", "--json")
    assert doctor.returncode != 0
    failed = [c["name"] for c in json.loads(doctor.stdout) if not c["ok"]]
    assert failed == ["public access", "lifecycle"]


def test_rgw_refusing_server_writes_is_found_and_fixed(rgw: RGW, bucket: str) -> None:
    """On RGW, BlockPublicAcls refuses every PutObject: doctor says so, init repairs it."""
    assert s3drop(rgw, bucket, "init").returncode == 0
    client = rgw.client()
    all_four = dict.fromkeys(
        ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"], True
    )
    client.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=all_four)
    doctor = s3drop(rgw, bucket, "doctor", "--json")
    assert doctor.returncode != 0
    failed = [c["name"] for c in json.loads(doctor.stdout) if not c["ok"]]
    assert failed == ["server writes"]
    assert outcomes(s3drop(rgw, bucket, "init", "--json"))["public access"] == "updated"
    assert s3drop(rgw, bucket, "doctor").returncode == 0
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)  # the probes were deleted


def test_doctor_with_a_wrong_secret(rgw: RGW, bucket: str) -> None:
    doctor = s3drop(rgw, bucket, "doctor", "--json", env={"AWS_SECRET_ACCESS_KEY": "wrong"})
    assert doctor.returncode != 0
    checks = json.loads(doctor.stdout)
    assert checks[0]["name"] == "credentials"
    assert not checks[0]["ok"]
    assert "AWS_SECRET_ACCESS_KEY" in checks[0]["detail"]
    assert all(c["skipped"] for c in checks[1:])


def test_doctor_on_a_missing_bucket_says_init(rgw: RGW, new_bucket: str) -> None:
    doctor = s3drop(rgw, new_bucket, "doctor")
    assert doctor.returncode != 0
    assert "failed: bucket access" in doctor.stderr
    assert "s3drop bucket init" in doctor.stdout


def test_bucket_commands_need_a_bucket(tmp_path: Path) -> None:
    """A real ``python -m s3drop`` once: the entry point's one line and exit code."""
    first = subprocess.run(
        [sys.executable, "-m", "s3drop", "bucket", "init"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    for result in (first, run_cli("bucket", "doctor", cwd=tmp_path)):
        assert result.returncode == 1
        assert result.stderr.startswith("s3drop: error: S3DROP_BUCKET")
        assert len(result.stderr.strip().splitlines()) == 1
