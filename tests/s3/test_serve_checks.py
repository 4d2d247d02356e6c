"""What a new user meets when s3drop runs on a real S3 engine (Ceph RGW): serve says at start what
would make every upload fail, people see plain messages, operators get the details."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.cli_inprocess import run_cli
from tests.conftest import RGW, LiveServer, isolate, start_server
from tests.inprocess import AppServer
from tests.test_client import noise_png

from s3drop import Settings
from s3drop._client import Client
from s3drop._errors import S3Error

pytestmark = pytest.mark.s3


def s3drop(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``s3drop *args``, in this process (what the command says is the point, not its process;
    ``serve``, whose start-up is, runs as a process: ``make_server``)."""
    return run_cli(*args, env=env, cwd=cwd)


def warnings_of(server: LiveServer, expected: int, seconds: float = 20) -> list[str]:
    """The start-up storage warnings, once ``expected`` of them were logged."""
    deadline = time.monotonic() + seconds
    while True:
        found = [line for line in server.output().splitlines() if line.startswith("warning: ")]
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_serve_on_another_port_says_the_bucket_cors_refuses_its_page(
    rgw: RGW, bucket: str, make_server: Callable[..., LiveServer]
) -> None:
    assert s3drop("bucket", "init", env=rgw.env(bucket)).returncode == 0  # CORS for port 8000
    server = make_server(env=rgw.env(bucket))
    port = server.url.rsplit(":", 1)[1]
    banner = server.output().splitlines()[0]
    assert banner.endswith(f": s3 bucket {bucket} at {rgw.endpoint}, http://127.0.0.1:{port}/")
    [warning] = warnings_of(server, 1)
    assert warning == (
        f"warning: storage: CORS: the store refuses a browser POST from http://127.0.0.1:{port} "
        f"(403), http://localhost:{port} (403); fix: run `s3drop bucket init --origin "
        f"http://127.0.0.1:{port} --origin http://localhost:{port}` (it adds origins; it never "
        "removes one)"
    )
    # The fix it names works, and keeps the origin that was there.
    fix = warning.split("`")[1].split()[1:]
    assert s3drop(*fix, env=rgw.env(bucket)).returncode == 0
    (rule,) = rgw.client().get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert sorted(rule["AllowedOrigins"]) == sorted(
        [
            "http://127.0.0.1:8000",
            "http://localhost:8000",
            f"http://127.0.0.1:{port}",
            f"http://localhost:{port}",
        ]
    )


def test_init_with_an_origin_adds_it_to_the_apps_own(rgw: RGW, bucket: str) -> None:
    init = s3drop("bucket", "init", "--origin", "http://127.0.0.1:8104", env=rgw.env(bucket))
    assert init.returncode == 0, init.stderr
    (rule,) = rgw.client().get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert sorted(rule["AllowedOrigins"]) == [
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8104",
        "http://localhost:8000",
    ]
    doctor = s3drop("bucket", "doctor", env=rgw.env(bucket))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


@pytest.fixture(scope="module")
def serve_on_rgw(
    rgw: RGW, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[dict[str, str]], LiveServer]]:
    """``serve_on_rgw(change)``: ``s3drop serve`` on a bucket of this module's, with ``change``
    to its environment; one server per change for the module (they only read: each refuses
    everything), stopped at its end."""
    bucket = rgw.new_bucket("t-serve")
    servers: dict[tuple[tuple[str, str], ...], LiveServer] = {}

    def serve(change: dict[str, str]) -> LiveServer:
        key = tuple(sorted(change.items()))
        if key not in servers:
            with pytest.MonkeyPatch.context() as patch:
                isolate(patch)
                servers[key] = start_server(
                    tmp_path_factory.mktemp("serve"), env={**rgw.env(bucket), **change}
                )
        return servers[key]

    yield serve
    for server in servers.values():
        server.stop()
    rgw.client().delete_bucket(Bucket=bucket)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"AWS_SECRET_ACCESS_KEY": "not-the-secret"},
            "warning: storage: credentials: storage refused the request signature",
        ),
        ({"S3DROP_BUCKET": "no-such-bucket"}, "warning: storage: bucket access: "),
    ],
)
def test_serve_says_at_start_what_would_fail_every_upload(
    serve_on_rgw: Callable[[dict[str, str]], LiveServer], change: dict[str, str], expected: str
) -> None:
    server = serve_on_rgw(change)
    warnings = warnings_of(server, 1)
    assert len(warnings) == 1, server.output()
    assert warnings[0].startswith(expected), warnings[0]
    assert "fix: " in warnings[0]
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # it started all the same


def test_people_see_plain_words_and_operators_the_details(
    rgw: RGW, serve_on_rgw: Callable[[dict[str, str]], LiveServer], tmp_path: Path
) -> None:
    server = serve_on_rgw({"AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    bucket = server.env["S3DROP_BUCKET"]
    answer = httpx.get(f"{server.url}/api/images")
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["code"] == "storage_access_denied"
    assert error["message"] == (
        "Storage is not set up correctly, so uploads cannot be saved. "
        f"(reference {error['reference']})"
    )
    assert "AWS_" not in answer.text
    assert rgw.endpoint not in answer.text
    [logged] = [line for line in server.output().splitlines() if error["reference"] in line]
    assert "storage_access_denied" in logged
    assert "AWS_SECRET_ACCESS_KEY" in logged  # the operator's hint is in the log

    # Signing needs storage now (the duplicate check), so it is refused in the same plain words.
    noise_png(tmp_path / "cat.png", 12)
    run = s3drop(  # default retries: a fault of the setup is said at once, never retried
        "upload",
        "cat.png",
        "--server",
        server.url,
        "--no-progress",
        env={},
        cwd=tmp_path,
    )
    assert run.returncode == 1
    assert run.stdout.startswith(
        "failed    cat.png  storage_access_denied: Storage is not set up correctly"
    )
    assert rgw.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_a_storage_refusal_with_no_message_still_says_what_happened(
    rgw: RGW, bucket: str, make_app: Callable[..., AppServer], tmp_path: Path
) -> None:
    """RGW answers a refused form with AccessDenied and an empty message; the client's line (what
    `s3drop upload` prints after `failed`) still says what happened. (Signed by the app
    in-process; posted to RGW over the network.)"""
    server = make_app(env=rgw.env(bucket))
    path = tmp_path / "cat.png"
    data = noise_png(path, 12)
    with Client(server.url, transport=server.transport()) as signer:
        form = signer.sign(filename="cat.png", content_type="image/png", size=len(data))
    form.fields["x-amz-signature"] = "0" * 64  # altered: the store refuses it
    with Client(server.url) as client, pytest.raises(S3Error) as refused:
        client.post_file(form, path)
    assert refused.value.code == "AccessDenied"
    assert refused.value.message == (
        "storage refused the upload: access denied (the form was refused: expired, altered, or "
        "not allowed) (HTTP 403)"
    )
    assert rgw.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_the_ceph_env_file_points_s3drop_at_rgw(rgw: RGW, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shell that sources the file has what s3drop's Settings read (the shell is the point:
    ``export`` lines; s3drop reads the environment it leaves, here in this process)."""
    script = f". {rgw.directory / 's3.env'} && env -0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    exported = dict(line.split("=", 1) for line in run.stdout.split("\0") if line)
    for name, value in exported.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    settings = Settings(bucket="b")
    assert [settings.endpoint_url, settings.region] == [rgw.endpoint, "us-east-1"]


def test_a_config_error_names_the_variable_once(tmp_path: Path) -> None:
    run = s3drop(
        "bucket",
        "doctor",
        env={"AWS_ENDPOINT_URL_S3": "127.0.0.1:7490", "S3DROP_BUCKET": "b"},
        cwd=tmp_path,
    )
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == (
        "s3drop: error: AWS_ENDPOINT_URL_S3: not an http(s) URL: '127.0.0.1:7490' "
        "(try http://127.0.0.1:7490)\n"
    )
