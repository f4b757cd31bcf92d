"""Every message of the console has its Chinese translation, and both catalogues hold the same ones."""

from __future__ import annotations

import re

from app.console.i18n import LANGUAGES, catalogue
from app.console.pages import EXPLAINED
from app.console.rendering import TEMPLATES as TEMPLATES_DIR
from app.domain.catalogue import ActivationChannel, CardService, OutletKind
from app.domain.reasons import Reason
from app.domain.roles import AdminRole
from app.ops.compliance.anomalies import KINDS as ANOMALY_KINDS
from app.ops.compliance.events import DECISIONS
from app.ops.grants.admin import GRANT_STATES
from app.ops.outlets.views import STATUSES

MESSAGE = re.compile(r"""_\(\s*(["'])(.+?)\1\s*\)""")


def used_messages() -> set[str]:
    found = {m.group(2) for path in TEMPLATES_DIR.glob("*.html") for m in MESSAGE.finditer(path.read_text())}
    # Shown through a variable: roles, outlet kinds and statuses, card services, grant states and
    # what each error code means.
    shown = {role.value for role in AdminRole} | {kind.value for kind in OutletKind} | set(STATUSES)
    shown |= {service.value for service in CardService} | set(GRANT_STATES) | set(EXPLAINED.values())
    shown |= {reason.value for reason in Reason} | set(ANOMALY_KINDS) | set(DECISIONS) | {"NOT_FOUND"}
    shown |= {channel.value for channel in ActivationChannel}
    shown |= {
        "UNKNOWN_OUTLET",
        "CLOSED",
        "OUTSIDE_TENANT",
        "FINANCIAL_NOT_BANK",
        "ABOVE_CEILING",
    }  # bulk grants
    return found | shown


def test_every_message_is_translated_in_every_language():
    used = used_messages()
    assert len(used) > 20
    for language in LANGUAGES:
        missing = used - catalogue(language).keys()
        assert not missing, f"{language}: no translation for {sorted(missing)}"
    chinese = catalogue("zh_CN")
    assert all(re.search(r"[\u4e00-\u9fff]", chinese[m]) for m in used), "a Chinese message without Chinese"
