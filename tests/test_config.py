import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.config import EXAMPLE_CONFIG_PATH, Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_example_documents_every_key_with_its_default() -> None:
    example = tomllib.loads(EXAMPLE_CONFIG_PATH.read_text(encoding="utf-8"))
    defaults = Config().model_dump(mode="json")
    assert set(example) == set(defaults)
    for section, values in defaults.items():
        assert set(example[section]) == set(values), section
    assert Config.model_validate(example) == Config()


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite+aiosqlite:///file.db"\n', encoding="utf-8")
    config = load_config(
        path,
        environ={
            "BOT_TOKEN": "1:abc",
            "DATABASE_URL": "postgresql+asyncpg://db/wuji",
            "TELEGRAM_API_SERVER": "http://127.0.0.1:8081",
        },
    )
    assert config.telegram.token.get_secret_value() == "1:abc"
    assert config.database.url == "postgresql+asyncpg://db/wuji"
    assert config.telegram.api_server == "http://127.0.0.1:8081"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[telegram]\nmode = 'carrier-pigeon'\n", "bad config key 'telegram.mode'"),
        ("[webhook]\nport = 70000\n", "bad config key 'webhook.port'"),
        ("[admins]\ntelegram_ids = ['alice']\n", "bad config key 'admins.telegram_ids.0'"),
        ("[databse]\nurl = 'x'\n", "unknown config key 'databse'"),
        ("[telegram\n", "is not valid TOML"),
    ],
)
def test_a_bad_value_names_its_key(tmp_path: Path, toml: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace(".", r"\.")):
        load_config(path, environ={})


def test_a_bad_value_never_echoes_the_token(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[telegram]\ntoken = 123456\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert "123456" not in str(raised.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", environ={})


def _refused(tmp_path: Path, toml: str, environ: dict[str, str] | None = None) -> str:
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ=environ or {})
    return str(raised.value)


def _loaded(tmp_path: Path, toml: str, environ: dict[str, str] | None = None) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    return load_config(path, environ=environ or {})


@pytest.mark.parametrize("section", ["i18n", "reports"])
@pytest.mark.parametrize(
    "zone", ["Mars/Base", "Asia/Shanghai ", "../../../etc/passwd", "/etc/passwd", "Asia"]
)
def test_an_unknown_time_zone_is_refused(tmp_path: Path, section: str, zone: str) -> None:
    message = _refused(tmp_path, f"[{section}]\ntimezone = {zone!r}\n")
    assert f"bad config key '{section}.timezone'" in message
    assert "unknown time zone" in message and "Asia/Shanghai" in message


def test_the_county_time_zone_may_not_be_empty(tmp_path: Path) -> None:
    assert "'i18n.timezone'" in _refused(tmp_path, "[i18n]\ntimezone = ''\n")
    config = _loaded(tmp_path, "[i18n]\ntimezone = 'Asia/Urumqi'\n[reports]\ntimezone = ''\n")
    assert (config.i18n.timezone, config.reports.timezone) == ("Asia/Urumqi", "")


@pytest.mark.parametrize(
    "url", ["nonsense", "http://127.0.0.1:6379", "redis:127.0.0.1", "redis://:pw@host:port/0"]
)
def test_a_redis_url_needs_a_redis_scheme(tmp_path: Path, url: str) -> None:
    message = _refused(tmp_path, f"[redis]\nurl = {url!r}\n")
    assert "bad config key 'redis.url'" in message and "redis://" in message
    assert "pw@" not in message


@pytest.mark.parametrize(
    "url", ["", "redis://127.0.0.1:6379/0", "rediss://:pw@cache:6380/1", "unix:///run/r.sock"]
)
def test_a_redis_url_with_its_scheme_is_taken(tmp_path: Path, url: str) -> None:
    assert _loaded(tmp_path, f"[redis]\nurl = {url!r}\n").redis.url == url


def test_a_config_path_that_is_a_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"config file {tmp_path} is a directory"):
        load_config(tmp_path, environ={})


def test_an_unreadable_config_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text("", encoding="utf-8")

    def refuse(*_: object, **__: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(ConfigError, match=f"cannot read config file {path}: Permission denied"):
        load_config(path, environ={})


def test_a_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes("\ufeff[telegram]\nbot_username = 'wuji_bot'\n".encode())
    assert load_config(path, environ={}).telegram.bot_username == "wuji_bot"


@pytest.mark.parametrize(
    "name", ["your bot", "https://t.me/your_bot", "t.me/your_bot", "1wuji_bot", "bot", "a" * 33]
)
def test_a_bot_username_must_be_a_telegram_username(tmp_path: Path, name: str) -> None:
    message = _refused(tmp_path, f"[telegram]\nbot_username = {name!r}\n")
    assert "bad config key 'telegram.bot_username'" in message and '"your_bot"' in message


@pytest.mark.parametrize(
    ("name", "kept"), [("", ""), ("wuji_bot", "wuji_bot"), ("@Wuji_Datong_bot", "Wuji_Datong_bot")]
)
def test_a_bot_username_loses_its_at_sign(tmp_path: Path, name: str, kept: str) -> None:
    assert _loaded(tmp_path, f"[telegram]\nbot_username = {name!r}\n").telegram.bot_username == kept


@pytest.mark.parametrize("server", ["nonsense", "ftp://x", "http://", "127.0.0.1:8081"])
def test_an_api_server_must_be_an_http_url(tmp_path: Path, server: str) -> None:
    message = _refused(tmp_path, f"[telegram]\napi_server = {server!r}\n")
    assert "bad config key 'telegram.api_server'" in message and "http://" in message
    message = _refused(tmp_path, "", environ={"TELEGRAM_API_SERVER": server})
    assert "bad TELEGRAM_API_SERVER (config key 'telegram.api_server')" in message


WEBHOOK = "[telegram]\nmode = 'webhook'\n[webhook]\nsecret_token = 'e2e-webhook-secret'\n"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://wuji.example.org/hook", "/telegram"),
        ("https://wuji.example.org/telegram/", "/telegram"),
        ("https://wuji.example.org", "/telegram"),
    ],
)
def test_a_webhook_url_must_end_with_its_path(tmp_path: Path, url: str, path: str) -> None:
    message = _refused(tmp_path, f"{WEBHOOK}url = {url!r}\npath = {path!r}\n")
    assert "[webhook] url must end with [webhook] path" in message
    # Only webhook mode listens there.
    polling = f"[webhook]\nurl = {url!r}\npath = {path!r}\n"
    assert _loaded(tmp_path, polling).webhook.url == url


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://wuji.example.org/telegram", "/telegram"),
        ("https://example.org/wuji/telegram", "/telegram"),  # a proxy adds the prefix
        ("https://example.org/wuji/telegram", "/wuji/telegram"),
        ("http://127.0.0.1:8443/telegram", "/telegram"),  # the in-repo emulator's
    ],
)
def test_a_webhook_url_ending_with_its_path_is_taken(tmp_path: Path, url: str, path: str) -> None:
    assert _loaded(tmp_path, f"{WEBHOOK}url = {url!r}\npath = {path!r}\n").webhook.path == path


def test_a_webhook_path_starts_with_a_slash(tmp_path: Path) -> None:
    message = _refused(tmp_path, "[webhook]\npath = 'telegram'\n")
    assert "bad config key 'webhook.path'" in message and '"/telegram"' in message


@pytest.mark.parametrize("mode", ["polling", "webhook"])
@pytest.mark.parametrize("secret", ["o", "a" * 15, "a" * 257, "sixteen chars!!!"])
def test_a_short_secret_token_is_refused_in_any_mode(
    tmp_path: Path, mode: str, secret: str
) -> None:
    toml = f"[telegram]\nmode = {mode!r}\n[webhook]\nsecret_token = {secret!r}\n"
    message = _refused(tmp_path, toml)
    assert "bad config key 'webhook.secret_token'" in message and "16-256" in message
    assert repr(secret) not in message  # never echoed


def test_a_secret_token_of_sixteen_characters_is_taken(tmp_path: Path) -> None:
    config = _loaded(tmp_path, "[webhook]\nsecret_token = 'abcdefgh_1234-XY'\n")
    assert config.webhook.secret_token.get_secret_value() == "abcdefgh_1234-XY"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///",
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "sqlite:///:memory:",
        "sqlite+aiosqlite:///file:x?mode=memory&uri=true",
    ],
)
def test_an_in_memory_database_is_refused(tmp_path: Path, url: str) -> None:
    fix = "in-memory SQLite database keeps nothing: name a file, e.g. sqlite+aiosqlite:///wuji.db"
    assert fix in _refused(tmp_path, f"[database]\nurl = {url!r}\n")
    assert fix in _refused(tmp_path, "", environ={"DATABASE_URL": url})


def _wuji_status(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"BOT_TOKEN", "DATABASE_URL", "TELEGRAM_API_SERVER", "WUJI_ROLE"}
    }
    environment["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "status"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        (None, "is a directory"),
        ("[i18n]\ntimezone = 'Mars/Base'\n", "'i18n.timezone'"),
        ("[redis]\nurl = 'nonsense'\n", "'redis.url'"),
        ("[telegram]\nbot_username = 'your bot'\n", "'telegram.bot_username'"),
        ("[telegram]\napi_server = 'ftp://x'\n", "'telegram.api_server'"),
        (
            f"{WEBHOOK}url = 'https://x.example/hook'\n",
            "[webhook] url must end with [webhook] path",
        ),
        ("[webhook]\nsecret_token = 'o'\n", "'webhook.secret_token'"),
        ("[database]\nurl = 'sqlite+aiosqlite:///:memory:'\n", "'database.url'"),
    ],
)
def test_the_command_line_says_it_in_one_line_and_exits_2(
    tmp_path: Path, toml: str | None, says: str
) -> None:
    config = tmp_path
    if toml is not None:
        config = tmp_path / "bad.toml"
        config.write_text(toml, encoding="utf-8")
    result = _wuji_status(config, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wuji: ") and says in lines[0], result.stderr
    assert "Traceback" not in result.stderr
