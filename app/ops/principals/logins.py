"""Console logins (GB/T 22239-2019 level 3 asks administrators for two factors): a password (argon2id)
and a TOTP code (RFC 6238) from an app the person enrols at their first login, each login a server-
side session (app/ops/principals/console_sessions.py), and a lockout after repeated failures.

The API keeps its bearer tokens (app/ops/auth.py); these are what the console's pages call. Every
outcome is audited in the person's own chain (the root's for a name nobody has): `login.success`,
`login.failure` with why (never the password or the code), `principal.set_password`. A failure says
the same whatever failed (unknown name, wrong password, deactivated person) and costs the same time,
so the login form tells nobody which names exist.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.errors import OpsError
from app.ops.principals.console_sessions import end_sessions, home_chain, open_session, session_row
from app.ops.principals.reach import name_input
from app.settings import Settings
from app.store.audit import append_event
from app.store.crypto import FieldCipher
from app.store.tables import ConsoleSession, LoginFailure, Principal, PrincipalLogin

PASSWORD_MIN, PASSWORD_MAX = 12, 256
TOTP_ISSUER = "ssc"
TOTP_CONTEXT = b"totp_secret"
_HASHER = PasswordHasher()  # argon2id with the library's defaults (RFC 9106's second recommendation)
WRONG = "wrong name or password"


# Verified when the name has no login, so that an unknown name costs what a wrong password does: the
# hash of a random password nobody kept, under the hasher's parameters (a test checks they still are
# the hasher's). A literal, not a hash made on import: that cost 0.1 s of every worker's start.
NOBODY = "$argon2id$v=19$m=65536,t=3,p=4$cIVqjuUohdsRgPpJ8rExRw$xuuf0c63lemi9+PVBiJlhNEQq6fruZDabCtMJARsst4"


def check_password_rules(password: str) -> None:
    """At least 12 characters of at least three kinds (lower case, upper case, digits, others)."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise OpsError(
            "BAD_INPUT", f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters", field="password"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise OpsError("BAD_INPUT", "a password holds no control characters", field="password")
    kinds = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    if sum(any(kind(c) for c in password) for kind in kinds) < 3:
        raise OpsError(
            "BAD_INPUT",
            "a password mixes at least three of: lower case, upper case, digits, other characters",
            field="password",
        )


async def set_password(
    sessions: async_sessionmaker[AsyncSession], name: str, password: str, *, actor: str = "cli:set-password"
) -> bool:
    """Give an active person a console password (their second factor is enrolled at their next login
    if they have none); their open console sessions end. True if they still have to enrol."""
    check_password_rules(password)
    hashed = _HASHER.hash(password)
    async with sessions() as session, session.begin():
        person = (await session.exec(select(Principal).where(Principal.name == name))).first()
        if person is None or not person.active:
            raise OpsError("NOT_FOUND", f"no active person {name[:64]}", field="name")
        login = await session.get(PrincipalLogin, person.id, with_for_update=True)
        now = datetime.now(UTC)
        if login is None:
            login = PrincipalLogin(principal_id=person.id, password_hash=hashed, password_set_at=now)
        else:
            login.password_hash, login.password_set_at = hashed, now
        session.add(login)
        ended = await end_sessions(session, person.id, "password_changed")
        enrolling = login.totp_enrolled_at is None
        await append_event(
            session,
            tenant=await home_chain(session, person.id),
            actor=actor,
            action="principal.set_password",
            target_type="principal",
            target_id=person.name,
            detail={"second_factor": "to enrol" if enrolling else "kept", "sessions_ended": ended},
        )
    return enrolling


@dataclass(frozen=True)
class Step:
    """Where a login stands: its session cookie's value (shown once) and what it needs next."""

    token: str
    stage: str  # "enrol": set up the second factor; "second_factor": give a code


async def _locked(session: AsyncSession, settings: Settings, name: str, address: str | None) -> bool:
    since = datetime.now(UTC) - timedelta(minutes=settings.login_lockout_minutes)
    limits = [(f"account:{name}", settings.login_failures_per_account)]
    if address:
        limits.append((f"address:{address}", settings.login_failures_per_address))
    for subject, limit in limits:
        count = (
            await session.exec(
                select(func.count()).where(LoginFailure.subject == subject, LoginFailure.at >= since)
            )
        ).one()
        if count >= limit:
            return True
    return False


async def _failed(
    session: AsyncSession, name: str, address: str | None, person: Principal | None, why: str
) -> None:
    session.add(LoginFailure(subject=f"account:{name}"))
    if address:
        session.add(LoginFailure(subject=f"address:{address}"))
    await append_event(
        session,
        tenant=await home_chain(session, person.id if person else None),
        actor=f"principal:{name}" if person else "anonymous",
        action="login.failure",
        target_type="principal",
        target_id=name,
        decision="deny",
        detail={"why": why, "address": address},
    )


async def password_step(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    name: str,
    password: str,
    address: str | None,
) -> Step:
    """The first factor: a session waiting for the second, or UNAUTHENTICATED (the same for every
    cause), or RATE_LIMITED while the account or the address is locked out."""
    password = password[:PASSWORD_MAX]
    try:
        name = name_input(name[:64])
    except OpsError:  # no such name can exist: counted and audited under one mark, never as typed
        name = "(not a name)"
    async with sessions() as session:
        locked = await _locked(session, settings, name, address)
        row = (
            await session.exec(
                select(Principal, PrincipalLogin)
                .join(PrincipalLogin, PrincipalLogin.principal_id == Principal.id)
                .where(Principal.name == name)
            )
        ).first()
    person, login = row if row else (None, None)
    try:
        ok = _HASHER.verify(login.password_hash if login else NOBODY, password) and login is not None
    except (VerificationError, InvalidHashError):
        ok = False
    refusal = (
        OpsError(
            "RATE_LIMITED",
            f"too many failed logins: try again in {settings.login_lockout_minutes} minutes",
            retryAfter=settings.login_lockout_minutes * 60,
        )
        if locked
        else OpsError("UNAUTHENTICATED", WRONG)
        if not ok or person is None or not person.active
        else None
    )
    async with sessions() as session, session.begin():
        if refusal is not None:  # recorded, then refused once the record is committed
            why = "locked out" if locked else "password" if person else "unknown name"
            await _failed(session, name, address, person, why)
        else:
            stage = "second_factor" if login.totp_enrolled_at is not None else "enrol"
            token = await open_session(session, person.id, stage, address)
    if refusal is not None:
        raise refusal
    return Step(token, stage)


async def enrolment(
    sessions: async_sessionmaker[AsyncSession], cipher: FieldCipher, token: str
) -> tuple[str, str]:
    """(secret, otpauth:// URI) for a session at the "enrol" stage: what the enrolment page shows as
    a QR code. The secret is made once and kept encrypted until the first code proves it."""
    async with sessions() as session, session.begin():
        found = await session_row(session, token, stages=("enrol",))
        login = await session.get(PrincipalLogin, found.principal_id, with_for_update=True)
        person = await session.get(Principal, found.principal_id)
        if login.totp_secret is None:
            login.totp_secret = cipher.encrypt(pyotp.random_base32(), context=TOTP_CONTEXT)
            session.add(login)
        secret = cipher.decrypt(login.totp_secret, context=TOTP_CONTEXT)
    return secret, pyotp.TOTP(secret).provisioning_uri(name=person.name, issuer_name=TOTP_ISSUER)


async def second_factor_step(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    cipher: FieldCipher,
    token: str,
    code: str,
    address: str | None,
) -> None:
    """The second factor: the session opens (and, at enrolment, the secret is confirmed), or
    UNAUTHENTICATED; a code is accepted once, within one 30-second step either side."""
    now = datetime.now(UTC)
    # One transaction decides; a refusal is raised after it commits, so its failure is recorded.
    # The login row is locked first: two requests racing with one code are decided one after the
    # other, and the second finds the step used.
    async with sessions() as session, session.begin():
        found = await session_row(session, token, stages=("enrol", "second_factor"))
        login = await session.get(PrincipalLogin, found.principal_id, with_for_update=True)
        person = await session.get(Principal, found.principal_id)
        refusal = None
        if await _locked(session, settings, person.name, address):
            refusal = OpsError("RATE_LIMITED", "too many failed logins: try again later")
        else:
            step = _accepted_step(cipher, login, code.strip()[:12], now)
            if step is None or not person.active:
                await _failed(session, person.name, address, person, "second factor")
                refusal = OpsError("UNAUTHENTICATED", "wrong or already used code")
            else:
                await _open(session, found, login, person, step, now, address)
    if refusal is not None:
        raise refusal


async def _open(
    session: AsyncSession,
    found: ConsoleSession,
    login: PrincipalLogin,
    person: Principal,
    step: int,
    now: datetime,
    address: str | None,
) -> None:
    """The session opens: the code's step is used up, a first code confirms the enrolment."""
    login.last_totp_step = step
    enrolled = login.totp_enrolled_at is None
    if enrolled:
        login.totp_enrolled_at = now
    session.add(login)
    found.stage, found.last_seen_at = "open", now
    session.add(found)
    await session.exec(delete(LoginFailure).where(LoginFailure.subject == f"account:{person.name}"))
    await append_event(
        session,
        tenant=await home_chain(session, person.id),
        actor=f"principal:{person.name}",
        credential=f"session:{found.id}",
        action="login.success",
        target_type="principal",
        target_id=person.name,
        decision="allow",
        detail={"address": address, "enrolled_second_factor": enrolled},
    )


def _accepted_step(cipher: FieldCipher, login: PrincipalLogin, code: str, now: datetime) -> int | None:
    """The 30-second step `code` belongs to, if it is right and newer than the last one used."""
    if login.totp_secret is None or not code.isdigit():
        return None
    totp = pyotp.TOTP(cipher.decrypt(login.totp_secret, context=TOTP_CONTEXT))
    current = totp.timecode(now)
    for step in (current, current - 1, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step if login.last_totp_step is None or step > login.last_totp_step else None
    return None
