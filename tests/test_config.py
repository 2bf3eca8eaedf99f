"""cxlib.config.load_pseudonym_key: where the key comes from, the key file created on first use
(mode 0600), refusals (missing with create=False, too short, readable by others, empty), and
messages that say where the key was looked for but never show it."""

from __future__ import annotations

import os
import re
import stat

import pytest

from cxlib import config
from cxlib.config import ConfigError

GOOD = "0123456789abcdef0123456789abcdef"          # 32 bytes


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No key in the environment (conftest sets one for the session), the default file in tmp_path."""
    monkeypatch.delenv(config.KEY_ENV, raising=False)
    monkeypatch.delenv(config.KEY_FILE_ENV, raising=False)
    monkeypatch.setattr(config, "DEFAULT_KEY_FILE", tmp_path / "home" / ".config" / "cx-insights" / "pseudonym.key")
    return tmp_path


def write_key(path, text: str, mode: int = 0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- missing key ------------------------------------------------------------------------------------
def test_missing_key_without_create_is_an_error_naming_where_and_how(no_env):
    with pytest.raises(ConfigError) as err:
        config.load_pseudonym_key(create=False)
    text = str(err.value)
    default = config.DEFAULT_KEY_FILE
    assert str(default) in text and "CX_PSEUDONYM_KEY (not set)" in text and "CX_KEY_FILE (not set)" in text
    assert "create_key" in text and "docs/privacy.md" in text
    assert not default.exists() and not default.parent.exists()          # nothing created


def test_missing_key_file_named_by_cx_key_file_is_named(no_env, monkeypatch):
    path = no_env / "keys" / "cx.key"
    monkeypatch.setenv(config.KEY_FILE_ENV, str(path))
    with pytest.raises(ConfigError, match=re.escape(f"the file named by CX_KEY_FILE: {path} (missing)")):
        config.load_pseudonym_key(create=False)
    assert not path.exists()


def test_created_on_first_use_with_mode_0600_and_reused(no_env):
    key = config.load_pseudonym_key()
    path = config.DEFAULT_KEY_FILE
    assert re.fullmatch(rb"[0-9a-f]{64}", key)
    assert path.read_text(encoding="utf-8") == key.decode() + "\n"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert config.load_pseudonym_key(create=False) == key               # the next (scheduled) run reads it


def test_created_key_is_0600_whatever_the_umask(no_env, monkeypatch):
    path = no_env / "k" / "new.key"
    monkeypatch.setenv(config.KEY_FILE_ENV, str(path))
    old = os.umask(0)
    try:
        config.load_pseudonym_key()
    finally:
        os.umask(old)
    assert mode(path) == 0o600


def test_two_fresh_keys_differ(no_env, monkeypatch):
    keys = []
    for name in ("a.key", "b.key"):
        monkeypatch.setenv(config.KEY_FILE_ENV, str(no_env / name))
        keys.append(config.load_pseudonym_key())
    assert keys[0] != keys[1]


# --- where the key comes from ---------------------------------------------------------------------
def test_environment_wins_over_files(no_env, monkeypatch):
    write_key(config.DEFAULT_KEY_FILE, "f" * 32)
    monkeypatch.setenv(config.KEY_ENV, GOOD)
    assert config.load_pseudonym_key(create=False) == GOOD.encode()


def test_cx_key_file_wins_over_the_default_file(no_env, monkeypatch):
    write_key(config.DEFAULT_KEY_FILE, "f" * 32)
    path = write_key(no_env / "other.key", f"  {GOOD}\n")
    monkeypatch.setenv(config.KEY_FILE_ENV, str(path))
    assert config.load_pseudonym_key(create=False) == GOOD.encode()      # surrounding whitespace stripped
    assert config.key_file() == path


def test_existing_key_file_is_not_replaced(no_env):
    path = write_key(config.DEFAULT_KEY_FILE, GOOD)
    assert config.load_pseudonym_key(create=True) == GOOD.encode()
    assert path.read_text(encoding="utf-8") == GOOD


# --- refusals ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o660, 0o666, 0o620])
def test_key_file_open_to_others_is_refused(no_env, file_mode):
    path = write_key(config.DEFAULT_KEY_FILE, GOOD, file_mode)
    with pytest.raises(ConfigError, match=re.escape(f"chmod 600 {path}")) as err:
        config.load_pseudonym_key()
    assert f"{file_mode:04o}" in str(err.value) and GOOD not in str(err.value)


def test_key_file_readable_by_owner_only_is_accepted(no_env):
    write_key(config.DEFAULT_KEY_FILE, GOOD, 0o400)
    assert config.load_pseudonym_key(create=False) == GOOD.encode()


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_key_file_is_refused(no_env, text):
    write_key(config.DEFAULT_KEY_FILE, text)
    with pytest.raises(ConfigError, match="key is empty"):
        config.load_pseudonym_key()


def test_short_key_in_file_is_refused_without_showing_it(no_env):
    write_key(config.DEFAULT_KEY_FILE, "short-secret-15")                # 15 bytes
    with pytest.raises(ConfigError, match="has 15 bytes, fewer than 16") as err:
        config.load_pseudonym_key()
    assert "short-secret-15" not in str(err.value) and str(config.DEFAULT_KEY_FILE) in str(err.value)


def test_short_key_in_environment_is_refused(no_env, monkeypatch):
    monkeypatch.setenv(config.KEY_ENV, "x" * 15)
    with pytest.raises(ConfigError, match="environment variable CX_PSEUDONYM_KEY: .* 15 bytes"):
        config.load_pseudonym_key()


def test_sixteen_bytes_are_enough(no_env, monkeypatch):
    monkeypatch.setenv(config.KEY_ENV, "ü" * 8)                           # 8 characters, 16 bytes in UTF-8
    assert config.load_pseudonym_key() == ("ü" * 8).encode("utf-8")


def test_key_path_that_is_a_folder_is_refused(no_env):
    config.DEFAULT_KEY_FILE.mkdir(parents=True)
    with pytest.raises(ConfigError, match="not a regular file"):
        config.load_pseudonym_key()
