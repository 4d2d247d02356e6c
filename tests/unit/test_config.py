from __future__ import annotations

from pathlib import Path

import pytest

from s3drop._config import Settings
from s3drop._errors import ConfigurationError
from s3drop._units import parse_size


def test_zero_configuration_is_the_local_backend() -> None:
    settings = Settings()
    assert settings.storage_backend == "local"
    assert settings.allowed_types == ["image/png", "image/jpeg"]
    assert settings.max_bytes == 10 * 1024 * 1024
    assert settings.expires_in == 600
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_a_bucket_switches_to_s3() -> None:
    assert Settings(bucket="photos").storage_backend == "s3"
    assert Settings(bucket="photos", backend="local").storage_backend == "local"


def test_s3_without_a_bucket_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="S3DROP_BUCKET"):
        Settings(backend="s3")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (5, 5),
        ("5", 5),
        ("10MiB", 10 * 1024 * 1024),
        ("10 mib", 10 * 1024 * 1024),
        ("200KB", 200_000),
        ("1k", 1000),
        ("2GiB", 2 * 1024**3),
    ],
)
def test_sizes(raw: object, expected: int) -> None:
    assert parse_size(raw) == expected


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        ({"max_bytes": 0}, "S3DROP_MAX_BYTES"),
        ({"max_bytes": "ten megs"}, "S3DROP_MAX_BYTES"),
        ({"max_bytes": "6GiB"}, "S3DROP_MAX_BYTES"),
        ({"expires_in": 0}, "S3DROP_EXPIRES_IN"),
        ({"expires_in": 8 * 24 * 3600}, "S3DROP_EXPIRES_IN"),
        ({"allowed_types": "image/png,text/html"}, "S3DROP_ALLOWED_TYPES"),
        ({"allowed_types": ""}, "S3DROP_ALLOWED_TYPES"),
        ({"port": 70000}, "S3DROP_PORT"),
        ({"max_pixels": 0}, "S3DROP_MAX_PIXELS"),
        ({"public_base_url": "cdn.example.com"}, "S3DROP_PUBLIC_BASE_URL"),
        ({"backend": "ftp"}, "S3DROP_BACKEND"),
        ({"allowed_hosts": "https://drop.example.com"}, "S3DROP_ALLOWED_HOSTS"),
        ({"allowed_hosts": "drop.example.com/x"}, "S3DROP_ALLOWED_HOSTS"),
        ({"trusted_proxies": "proxy.internal"}, "S3DROP_TRUSTED_PROXIES"),
        ({"trusted_proxies": "10.0.0.0/33"}, "S3DROP_TRUSTED_PROXIES"),
    ],
)
def test_bad_settings_fail_naming_the_setting(values: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings(**values)
    assert caught.value.message.startswith(setting)


def test_bad_environment_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3DROP_MAX_BYTES", "lots")
    with pytest.raises(ConfigurationError, match="S3DROP_MAX_BYTES"):
        Settings()


def test_allowed_types_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3DROP_ALLOWED_TYPES", "image/webp, IMAGE/PNG,image/webp")
    assert Settings().allowed_types == ["image/webp", "image/png"]


def test_secret_is_generated_once_and_shared(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path / "data").local_secret()
    second = Settings(data_dir=tmp_path / "data").local_secret()
    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert Settings(data_dir=tmp_path / "other").local_secret() != first


def test_given_secret_wins(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="s3cret-from-the-operator")
    assert settings.local_secret() == b"s3cret-from-the-operator"
    assert not (tmp_path / "secret.key").exists()


def test_hosts_and_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(host="0.0.0.0", public=True).hosts() == []  # a wildcard bind names nothing
    assert Settings(host="::1").origins()[0] == "http://[::1]:8000"
    assert Settings().trusted_proxies == []  # no proxy is believed unless named
    monkeypatch.setenv("S3DROP_ALLOWED_HOSTS", "Drop.Example.com, *.corp.example,[2001:db8::1]")
    monkeypatch.setenv("S3DROP_TRUSTED_PROXIES", "10.0.0.0/8, ::1")
    monkeypatch.setenv("S3DROP_PUBLIC_URL", "https://Public.Example:8443/drop")
    settings = Settings()
    assert settings.hosts() == [
        "127.0.0.1", "public.example", "drop.example.com", "*.corp.example", "2001:db8::1"
    ]  # fmt: skip
    assert settings.trusted_proxies == ["10.0.0.0/8", "::1"]
    assert settings.origins() == [
        "http://127.0.0.1:8000", "http://localhost:8000", "https://public.example:8443"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8000", True),
        ("127.0.0.2:1", True),
        ("localhost", True),
        ("[::1]:8000", True),
        ("drop.example.com", True),
        ("DROP.example.com:443", True),
        ("a.corp.example", True),
        ("corp.example", False),
        ("corp.example.evil", False),
        ("evilcorp.example", False),
        ("rebind.evil.example:8000", False),
        ("localhost.evil.example", False),
        ("", False),
        (":8000", False),
    ],
)
def test_which_hosts_the_app_answers(host: str, allowed: bool) -> None:
    from s3drop.web._security import HostMiddleware

    settings = Settings(allowed_hosts="drop.example.com,*.corp.example")
    middleware = HostMiddleware(lambda *a: None, hosts=settings.hosts())  # type: ignore[arg-type]
    assert middleware.allows(host) is allowed
    assert HostMiddleware(lambda *a: None, hosts=["*"]).allows(host) is bool(host.split(":")[0])  # type: ignore[arg-type]


def test_the_browser_downscale_is_off_by_default_and_checked_when_set() -> None:
    settings = Settings()
    assert (settings.client_max_side, settings.client_quality) == (None, 85)
    assert Settings(client_max_side="2048", client_quality="70").client_max_side == 2048
    with pytest.raises(ConfigurationError, match="S3DROP_CLIENT_MAX_SIDE"):
        Settings(client_max_side=0)
    with pytest.raises(ConfigurationError, match="S3DROP_CLIENT_QUALITY"):
        Settings(client_quality=101)


def test_a_redis_url_is_checked_and_never_echoed() -> None:
    assert Settings(redis_url="redis://10.0.0.5:6379/0").redis_url == "redis://10.0.0.5:6379/0"
    assert Settings(redis_url="").redis_url is None
    with pytest.raises(ConfigurationError, match=r"^S3DROP_REDIS_URL: not a Redis URL") as caught:
        Settings(redis_url="10.0.0.5:6379 password=hunter2hunter2")
    assert "hunter2" not in str(caught.value)


def test_the_library_creates_no_limits_file_and_the_app_uses_the_data_folder(
    tmp_path: Path,
) -> None:
    from s3drop._uploads import S3Drop
    from s3drop.limits import MemoryLimitStore, SQLiteLimitStore, app_limit_store
    from s3drop.web.app import create_app

    settings = Settings(data_dir=tmp_path / "data")
    assert isinstance(S3Drop(settings).limits.store, MemoryLimitStore)
    assert not (tmp_path / "data" / "limits.sqlite3").exists()
    assert not list(Path.cwd().glob("**/limits.sqlite3"))
    store = create_app(settings).state.drop.limits.store
    assert isinstance(store, SQLiteLimitStore)
    assert store.path == tmp_path / "data" / "limits.sqlite3"
    assert isinstance(app_limit_store(settings), SQLiteLimitStore)
