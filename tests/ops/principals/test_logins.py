"""Console logins: a password and a TOTP second factor enrolled at the first login, server-side
sessions that logout, deactivation, a new password and idleness end at once, a lockout counted in the
database, and failures that say the same whatever failed. Through the use cases on a real database."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import timedelta

import pyotp
import pytest
from argon2.exceptions import VerifyMismatchError
from sqlmodel import select

from app.ops.auth import authenticate
from app.ops.errors import OpsError
from app.ops.principals import logins
from app.ops.principals.admin import deactivate_principal
from app.ops.principals.console_sessions import console_actor, csrf_ok, csrf_token, log_out
from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import enrolment, password_step, second_factor_step, set_password
from app.settings import Settings
from app.store.crypto import FieldCipher
from app.store.tables import AuditEvent, PrincipalLogin

GZ = "cn/440000/440100"
PASSWORD = "Guangzhou-2026-ok"
IDLE = timedelta(minutes=15)
SETTINGS = Settings(login_failures_per_account=5, login_failures_per_address=8, login_lockout_minutes=15)


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher(secrets.token_bytes(32), secrets.token_bytes(32))


@pytest.fixture
async def admin(sessions, tenants_dir):
    from app.ops.tenants.apply import apply_tenant_files

    await apply_tenant_files(sessions, tenants_dir)
    issued = await create_principal_with_token(sessions, tenant_path=GZ, role="city_admin", name="gz.admin")
    await set_password(sessions, "gz.admin", PASSWORD)
    return issued


async def logged_in(
    sessions, cipher, name="gz.admin", password=PASSWORD, address="10.0.0.1", step: int = 0
) -> tuple[str, str]:
    """A full login with the code of the TOTP step `step` away from now (a code works once, and the
    steps just before and after now are accepted: three logins within one step need three steps);
    (session token, the TOTP secret)."""
    if step == 0 and time.time() % 30 > 25:
        await asyncio.sleep(30 - time.time() % 30)  # not astride two steps
    found = await password_step(sessions, SETTINGS, name, password, address)
    if found.stage == "enrol":
        secret, uri = await enrolment(sessions, cipher, found.token)
        assert uri.startswith("otpauth://totp/") and "issuer=ssc" in uri
    else:
        secret = logged_in.secrets[name]
    logged_in.secrets[name] = secret
    code = pyotp.TOTP(secret).at(time.time() + 30 * step)
    await second_factor_step(sessions, SETTINGS, cipher, found.token, code, address)
    return found.token, secret


logged_in.secrets = {}


async def events(sessions, action: str) -> list[AuditEvent]:
    async with sessions() as session:
        return list((await session.exec(select(AuditEvent).where(AuditEvent.action == action))).all())


async def test_first_login_enrols_the_second_factor_and_opens_a_session(sessions, admin, cipher):
    token, secret = await logged_in(sessions, cipher)
    actor = await console_actor(sessions, token, IDLE)
    assert actor.name == "gz.admin" and ("city_admin", GZ) in actor.assignments
    assert actor.credential.startswith("session:")
    (success,) = await events(sessions, "login.success")
    assert success.credential == actor.credential and success.tenant == GZ
    async with sessions() as session:
        stored = await session.get(PrincipalLogin, actor.principal_id)
    assert stored.totp_enrolled_at is not None and secret.encode() not in stored.totp_secret  # encrypted
    assert PASSWORD not in stored.password_hash
    # The next login asks for a code, not an enrolment; the code just used does not work twice.
    step = await password_step(sessions, SETTINGS, "gz.admin", PASSWORD, "10.0.0.1")
    assert step.stage == "second_factor"
    used = pyotp.TOTP(secret).now()
    with pytest.raises(OpsError) as refused:
        await second_factor_step(sessions, SETTINGS, cipher, step.token, used, "10.0.0.1")
    assert refused.value.code == "UNAUTHENTICATED"
    with pytest.raises(OpsError):  # and a half-open session is no session
        await console_actor(sessions, step.token, IDLE)


async def test_a_failure_says_the_same_whatever_failed_and_leaves_no_secret(sessions, admin, cipher):
    await create_principal_with_token(sessions, tenant_path=GZ, role="operator", name="gz.gone")
    await set_password(sessions, "gz.gone", PASSWORD)
    token, _ = await logged_in(sessions, cipher)
    await deactivate_principal(
        sessions, await console_actor(sessions, token, IDLE), name="gz.gone", reason="left"
    )
    answers = set()
    for name, password in (
        ("gz.admin", "Wrong-password-1"),
        ("nobody.here", PASSWORD),
        ("gz.gone", PASSWORD),
        ("gz.admin\x1b[2J", PASSWORD),  # not even a name: refused alike, and not written as typed
    ):
        with pytest.raises(OpsError) as refused:
            await password_step(sessions, SETTINGS, name, password, "10.0.0.2")
        answers.add((refused.value.code, refused.value.message))
    assert answers == {("UNAUTHENTICATED", "wrong name or password")}
    failures = await events(sessions, "login.failure")
    assert len(failures) == 4 and all(e.decision == "deny" for e in failures)
    assert not any("\x1b" in e.target_id for e in failures)
    assert not any(PASSWORD in e.detail or "Wrong-password" in e.detail for e in failures)


async def test_repeated_failures_lock_the_account_then_the_address(sessions, admin, cipher):
    for _ in range(SETTINGS.login_failures_per_account):
        with pytest.raises(OpsError):
            await password_step(sessions, SETTINGS, "gz.admin", "Wrong-password-1", "10.0.0.3")
    with pytest.raises(OpsError) as locked:  # the right password, but too late
        await password_step(sessions, SETTINGS, "gz.admin", PASSWORD, "10.0.0.9")
    assert locked.value.code == "RATE_LIMITED"
    # One address trying many names is stopped too, names that exist or not.
    for n in range(SETTINGS.login_failures_per_address - SETTINGS.login_failures_per_account):
        with pytest.raises(OpsError):
            await password_step(sessions, SETTINGS, f"guess.{n}", PASSWORD, "10.0.0.3")
    await create_principal_with_token(sessions, tenant_path=GZ, role="operator", name="gz.other")
    await set_password(sessions, "gz.other", PASSWORD)
    with pytest.raises(OpsError) as locked:
        await password_step(sessions, SETTINGS, "gz.other", PASSWORD, "10.0.0.3")
    assert locked.value.code == "RATE_LIMITED"
    assert (await password_step(sessions, SETTINGS, "gz.other", PASSWORD, "10.0.0.4")).stage == "enrol"


async def test_logout_deactivation_a_new_password_and_idleness_end_sessions(sessions, admin, cipher):
    first, _ = await logged_in(sessions, cipher, step=-1)
    await log_out(sessions, first)
    (logout,) = await events(sessions, "login.logout")
    assert logout.target_id == "gz.admin"
    second, _ = await logged_in(sessions, cipher)
    await asyncio.sleep(0.01)
    with pytest.raises(OpsError):
        await console_actor(sessions, second, timedelta(milliseconds=1))  # idle too long: ended
    with pytest.raises(OpsError):
        await console_actor(sessions, second, IDLE)  # and stays ended
    third, _ = await logged_in(sessions, cipher, step=1)
    await set_password(sessions, "gz.admin", "Another-pass-2026")
    for token in (first, third):
        with pytest.raises(OpsError) as refused:
            await console_actor(sessions, token, IDLE)
        assert refused.value.code == "UNAUTHENTICATED"


async def test_deactivating_a_person_ends_their_console_session(sessions, admin, cipher):
    other = await create_principal_with_token(sessions, tenant_path=GZ, role="operator", name="gz.op")
    await set_password(sessions, "gz.op", PASSWORD)
    token, _ = await logged_in(sessions, cipher, name="gz.op")
    assert (await console_actor(sessions, token, IDLE)).name == "gz.op"
    async with sessions() as session:
        boss = await authenticate(session, admin.token)
    await deactivate_principal(sessions, boss, name=other.principal_name, reason="left the department")
    with pytest.raises(OpsError):
        await console_actor(sessions, token, IDLE)


async def test_set_password_checks_the_password_and_the_person(sessions, admin):
    for password in ("short-1A", "alllowercaseletters", "NoDigitsOrSigns", "Tab\there-2026-x"):
        with pytest.raises(OpsError) as refused:
            await set_password(sessions, "gz.admin", password)
        assert (refused.value.code, refused.value.extensions.get("field")) == ("BAD_INPUT", "password")
    with pytest.raises(OpsError) as refused:
        await set_password(sessions, "nobody.here", PASSWORD)
    assert refused.value.code == "NOT_FOUND"


def test_a_form_token_belongs_to_its_session():
    key = secrets.token_bytes(32)
    mine, theirs = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    assert csrf_ok(key, mine, csrf_token(key, mine))
    assert not csrf_ok(key, mine, csrf_token(key, theirs))
    assert not csrf_ok(key, mine, None) and not csrf_ok(key, None, csrf_token(key, mine))
    assert not csrf_ok(secrets.token_bytes(32), mine, csrf_token(key, mine))


async def test_two_logins_racing_with_one_code_open_one_session(sessions, admin, cipher):
    """Someone who saw a code over the person's shoulder, sending it at the same moment: one of the
    two sessions opens, the other is refused (the code's step is used up under the row's lock)."""
    _, secret = await logged_in(sessions, cipher)
    if time.time() % 30 > 25:
        await asyncio.sleep(30 - time.time() % 30)
    first = await password_step(sessions, SETTINGS, "gz.admin", PASSWORD, "10.0.0.1")
    second = await password_step(sessions, SETTINGS, "gz.admin", PASSWORD, "10.0.0.2")
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step: not used by the first login
    outcomes = await asyncio.gather(
        second_factor_step(sessions, SETTINGS, cipher, first.token, code, "10.0.0.1"),
        second_factor_step(sessions, SETTINGS, cipher, second.token, code, "10.0.0.2"),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, OpsError)]
    assert len(refused) == 1 and refused[0].code == "UNAUTHENTICATED", outcomes
    opened = [token for token, o in zip((first.token, second.token), outcomes, strict=True) if o is None]
    assert len(opened) == 1 and (await console_actor(sessions, opened[0], IDLE)).name == "gz.admin"
    assert len(await events(sessions, "login.success")) == 2  # the first login's and this one's


def test_an_unknown_name_is_checked_against_a_hash_as_costly_as_a_real_one():
    """NOBODY stands in for the password hash of a name without a login: were its parameters not the
    hasher's own, an unknown name would answer faster (or slower) than a wrong password."""
    assert not logins._HASHER.check_needs_rehash(logins.NOBODY)
    with pytest.raises(VerifyMismatchError):
        logins._HASHER.verify(logins.NOBODY, "correct horse battery staple")
