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

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SSC_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    # A plain `sqlite:///file` or `postgresql://...` URL; the store picks the async and sync drivers.
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'ssc.db'}"
    host: str = "127.0.0.1"
    port: int = 8000
    # Worker processes of `ssc serve` (each holds the whole policy in memory and tails the change log).
    workers: int = Field(default=1, ge=1, le=64)
    # On SIGTERM a worker stops accepting, lets the requests in flight finish for up to this long,
    # then drains its audit writer and exits.
    shutdown_grace_seconds: float = Field(default=30, ge=0, le=600)
    # Where the workers of `ssc serve` keep their metrics for /metrics (emptied at start).
    metrics_dir: Path = PROJECT_ROOT / "var" / "metrics"
    # Where workers keep snapshots of their loaded policy, one file per database, so that a restart
    # reads the file and the change log after it instead of every line (app/authz/snapshot.py);
    # local disk, writable by the service alone. Empty: no snapshots.
    policy_snapshot_dir: Path | None = PROJECT_ROOT / "var" / "snapshots"

    @field_validator("policy_snapshot_dir", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        # SSC_POLICY_SNAPSHOT_DIR= (empty) turns snapshots off; as a path it would be the cwd.
        return None if value == "" else value

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    tenants_dir: Path = PROJECT_ROOT / "tenants"
    # AES-256-GCM key for ID and bank card numbers, and the HMAC key for their lookup hashes
    # (urlsafe base64 of 32 bytes each). Outside production a missing key is generated once into
    # var/ (git-ignored) so `make serve` works on a fresh machine; production must set both.
    data_key: SecretStr | None = None
    lookup_key: SecretStr | None = None
    # Ed25519 private key (urlsafe base64 of its 32-byte seed) that signs the audit checkpoints:
    # generated into the key file outside production like the keys above; production must set it.
    audit_signing_key: SecretStr | None = None
    # Key rotation (docs/operations.md): the keys being retired. Values under a previous data key
    # (comma-separated, newest first) still decrypt and lookups still find hashes under the previous
    # lookup key, until `ssc keys rewrap` has moved every stored value to the current keys.
    previous_data_keys: SecretStr | None = None
    previous_lookup_key: SecretStr | None = None
    # PEM file of the public keys that signed earlier checkpoints (`ssc audit public-key` of each
    # retired signing key, concatenated): `ssc audit verify` trusts them beside the current one.
    audit_previous_public_keys: Path | None = None
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
    # A card's PIN that locks this many times within the window is hard-locked: only an HRSS hall or
    # the 12333 desk unlocks it, after checking the holder's identity (stops guessing through
    # lock and unlock).
    pin_hard_lock_after: int = Field(default=3, ge=2, le=10)
    pin_hard_lock_window_hours: int = Field(default=24, ge=1, le=720)
    # How long a request naming a revision (SSC-Revision) waits for this worker to apply it before
    # it is answered STALE.
    revision_wait_seconds: float = Field(default=1.0, ge=0, le=10)
    # The range of times the API accepts (grant windows, `at`, `activeAt`, ranges): anything else is
    # BAD_INPUT. Policy lines compare times as fixed-width text, which needs four-digit years.
    accepted_time_earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    accepted_time_latest: datetime = datetime(2200, 1, 1, tzinfo=UTC)
    # How often each worker looks whether events were written since the last signed checkpoint of
    # the audit chains, and signs one if so (0: never; `ssc audit checkpoint` still does).
    audit_checkpoint_seconds: int = Field(default=60, ge=0, le=86_400)
    # How long audit events stay in the database before `ssc audit archive` may move them to a file:
    # never less than the six months of the Cybersecurity Law (Art. 21).
    audit_retention_days: int = Field(default=365, ge=180, le=36_500)
    # The audit event subscription (graphql-transport-ws): how many one connection may hold, and how
    # often each looks for new events in the database.
    subscriptions_per_connection: int = Field(default=5, ge=1, le=100)
    subscription_poll_seconds: float = Field(default=0.5, ge=0.05, le=10)
    # The console (GB/T 22239-2019 level 3): a session ends after this long without a request, and a
    # login is refused for `login_lockout_minutes` after this many failures of one account, or of
    # one address, within that time (counted in the database, so across workers).
    console_idle_minutes: int = Field(default=15, ge=1, le=480)
    login_failures_per_account: int = Field(default=5, ge=3, le=100)
    login_failures_per_address: int = Field(default=20, ge=3, le=1000)
    login_lockout_minutes: int = Field(default=15, ge=1, le=1440)


# var/keys.env names each key as its setting does; `data` and `lookup` are how files made before
# that named them, still read.
DEV_KEYS = {"SSC_DATA_KEY": "data", "SSC_LOOKUP_KEY": "lookup", "SSC_AUDIT_SIGNING_KEY": None}


def _new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _load_or_create_dev_keys(path: Path) -> dict[str, str]:
    """Keys for development, by setting name: created with 0600 permissions, never printed. A key
    the file lacks (one added to ssc after the file was made) is generated and appended."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# Development keys made by ssc; production sets them in its environment.\n")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    found = {k.strip(): v.strip() for k, v in pairs}
    keys = {name: found.get(name) or found.get(old or "") for name, old in DEV_KEYS.items()}
    missing = {name: _new_key() for name, value in keys.items() if not value}
    if missing:
        with path.open("a") as fh:
            fh.write("".join(f"{k}={v}\n" for k, v in missing.items()))
    return {**keys, **missing}


def _raw_key(text: str, name: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise RuntimeError(f"{name} must be urlsafe base64 of 32 bytes")
    return raw


def _dev_or_set(settings: Settings, value: SecretStr | None, name: str) -> bytes:
    """A key's raw 32 bytes: the setting's, else (outside production) the development key file's."""
    if value is not None:
        text = value.get_secret_value()
    elif settings.env == "production":
        raise RuntimeError(f"{name} must be set in production")
    else:
        text = _load_or_create_dev_keys(settings.key_file)[name]
    return _raw_key(text, name)


def resolve_keys(settings: Settings) -> tuple[bytes, bytes]:
    """Return (data_key, lookup_key) as raw 32-byte values."""
    return (
        _dev_or_set(settings, settings.data_key, "SSC_DATA_KEY"),
        _dev_or_set(settings, settings.lookup_key, "SSC_LOOKUP_KEY"),
    )


def resolve_previous_keys(settings: Settings) -> tuple[tuple[bytes, ...], bytes | None]:
    """The keys being retired: (previous data keys, previous lookup key), raw."""
    data = settings.previous_data_keys
    lookup = settings.previous_lookup_key
    return (
        tuple(
            _raw_key(part, "SSC_PREVIOUS_DATA_KEYS")
            for part in (data.get_secret_value().split(",") if data else ())
            if part.strip()
        ),
        _raw_key(lookup.get_secret_value(), "SSC_PREVIOUS_LOOKUP_KEY") if lookup else None,
    )


def resolve_signing_key(settings: Settings) -> bytes:
    """The audit signing key's 32-byte Ed25519 seed."""
    return _dev_or_set(settings, settings.audit_signing_key, "SSC_AUDIT_SIGNING_KEY")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
