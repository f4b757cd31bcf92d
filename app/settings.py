"""Runtime settings, read from the environment with the ``SSC_`` prefix.

Every layer may import this module: it holds configuration only, no behaviour.
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SSC_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    # A plain `sqlite:///file` or `postgresql://...` URL; the store picks the async and sync drivers.
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'ssc.db'}"
    host: str = "127.0.0.1"
    port: int = 8000
    tenants_dir: Path = PROJECT_ROOT / "tenants"
    # AES-256-GCM key for ID and bank card numbers, and the HMAC key for their lookup hashes
    # (urlsafe base64 of 32 bytes each). Outside production a missing key is generated once into
    # var/ (git-ignored) so `make serve` works on a fresh machine; production must set both.
    data_key: SecretStr | None = None
    lookup_key: SecretStr | None = None
    key_file: Path = PROJECT_ROOT / "var" / "keys.env"
    sql_echo: bool = False
    graphql_max_depth: int = Field(default=12, ge=1)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_tokens: int = Field(default=5_000, ge=10)
    graphql_max_document_bytes: int = Field(default=100_000, ge=1_000)
    # Bodies may carry CSV text in variables (outlet imports, bulk grant lists), hence larger.
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=10_000)
    # A partner key's calls when the key sets no limit of its own (see app/ops/partner_keys/rate_limit.py).
    partner_rate_limit: str = "50/second"
    # memory:// counts per worker; a redis://host:port[/db] URL shares one count among all workers.
    rate_limit_storage: str = "memory://"
    # How long a worker trusts a verified partner key without asking the database again: the bound
    # on how late a revocation, an expiry or an outlet's closing reaches every worker. 0 disables.
    partner_key_cache_seconds: float = Field(default=1.0, ge=0, le=5)
    # The highest rate limit a new partner key may be given (calls per second are compared, so
    # 60000/minute equals 1000/second), and, whatever a key's longer period, the most calls it may
    # make in any one second: one key must not be able to take a worker's whole capacity.
    partner_rate_limit_max: str = "1000/second"
    # How many live (neither revoked nor expired) keys one outlet may hold: a rate limit per key
    # would mean little if an outlet could multiply its keys.
    partner_max_keys_per_outlet: int = Field(default=5, ge=1, le=100)
    # How long a partner mutation's first answer is kept under its idempotency key (`ssc idempotency
    # purge` deletes older ones). A partner retries a lost response within minutes, at worst after an
    # outage of a few days; past this age the key is forgotten and a retry with it is treated as a new
    # call, which acts again. The stored answers hold masked card data, so they are not kept for ever
    # (at most a year).
    idempotency_retention_hours: int = Field(default=72, ge=1, le=8760)
    # How long the one-time enrolment token of an account made through the API (createPrincipal)
    # stays usable: the new person redeems it for their own token with issueToken.
    enrolment_token_hours: int = Field(default=24, ge=1, le=72)
    # The range of times the API accepts (grant windows, `at`, `activeAt`, ranges): anything else is
    # BAD_INPUT. Policy lines compare times as fixed-width text, which needs four-digit years.
    # A card's PIN that locks this many times within the window is hard-locked: only an HRSS hall or
    # the 12333 desk unlocks it, after checking the holder's identity (stops guessing through
    # lock and unlock).
    pin_hard_lock_after: int = Field(default=3, ge=2, le=10)
    pin_hard_lock_window_hours: int = Field(default=24, ge=1, le=720)
    # How long a request naming a revision (SSC-Revision) waits for this worker to apply it before
    # it is answered STALE.
    revision_wait_seconds: float = Field(default=1.0, ge=0, le=10)
    accepted_time_earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    accepted_time_latest: datetime = datetime(2200, 1, 1, tzinfo=UTC)


# var/keys.env names each key as its setting does; `data` and `lookup` are how files made before
# that named them, still read.
DEV_KEYS = {"SSC_DATA_KEY": "data", "SSC_LOOKUP_KEY": "lookup"}


def _load_or_create_dev_keys(path: Path) -> dict[str, str]:
    """Keys for development, by setting name: created once with 0600 permissions, never printed."""
    if path.exists():
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        found = {k.strip(): v.strip() for k, v in pairs}
        return {name: found.get(name) or found[old] for name, old in DEV_KEYS.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = {name: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() for name in DEV_KEYS}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            "# Development keys, made by ssc outside production; production sets them in the environment.\n"
        )
        fh.write("".join(f"{k}={v}\n" for k, v in keys.items()))
    return keys


def resolve_keys(settings: Settings) -> tuple[bytes, bytes]:
    """Return (data_key, lookup_key) as raw 32-byte values."""
    data, lookup = settings.data_key, settings.lookup_key
    if data is None or lookup is None:
        if settings.env == "production":
            raise RuntimeError("SSC_DATA_KEY and SSC_LOOKUP_KEY must be set in production")
        dev = _load_or_create_dev_keys(settings.key_file)
        data_b64 = data.get_secret_value() if data else dev["SSC_DATA_KEY"]
        lookup_b64 = lookup.get_secret_value() if lookup else dev["SSC_LOOKUP_KEY"]
    else:
        data_b64, lookup_b64 = data.get_secret_value(), lookup.get_secret_value()
    raw = base64.urlsafe_b64decode(data_b64), base64.urlsafe_b64decode(lookup_b64)
    if any(len(k) != 32 for k in raw):
        raise RuntimeError("SSC_DATA_KEY and SSC_LOOKUP_KEY must each be urlsafe base64 of 32 bytes")
    return raw


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
