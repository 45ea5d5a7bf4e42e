import tomllib
from pathlib import Path

import pytest

from bot.config import EXAMPLE_CONFIG_PATH, Config, ConfigError, load_config


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
