"""Development keys: made once into the key file, under the names of their settings; retired keys."""

from __future__ import annotations

import base64
import secrets

import pytest

from app.settings import Settings, resolve_keys
from app.store.crypto import field_cipher


def test_the_key_file_names_its_keys_as_the_settings_do(tmp_path):
    key_file = tmp_path / "keys.env"
    first = resolve_keys(Settings(key_file=key_file))
    text = key_file.read_text()
    assert "SSC_DATA_KEY=" in text and "SSC_LOOKUP_KEY=" in text
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert resolve_keys(Settings(key_file=key_file)) == first  # made once, then read


def test_a_key_file_of_the_old_names_is_still_read(tmp_path):
    keys = [secrets.token_bytes(32) for _ in range(2)]
    key_file = tmp_path / "keys.env"
    key_file.write_text(
        "".join(
            f"{n}={base64.urlsafe_b64encode(k).decode()}\n"
            for n, k in zip(("data", "lookup"), keys, strict=True)
        )
    )
    assert resolve_keys(Settings(key_file=key_file)) == tuple(keys)


@pytest.mark.parametrize(
    ("setting", "name"),
    [("previous_data_keys", "SSC_PREVIOUS_DATA_KEYS"), ("previous_lookup_key", "SSC_PREVIOUS_LOOKUP_KEY")],
)
def test_a_malformed_retired_key_is_refused_by_name_without_echoing_it(tmp_path, setting, name):
    settings = Settings(key_file=str(tmp_path / "keys.env"), **{setting: "c2hvcnQ=,secret-ish"})
    with pytest.raises(RuntimeError) as refused:
        field_cipher(settings)
    assert name in str(refused.value) and "secret-ish" not in str(refused.value)
