"""How personal data is shown: masked for everyone, in full only through an audited reveal.

The API, the CLI and the editor all show a member's personal data through these functions. Who
may reveal, erase or export in full is a scope: API keys are given it; people get it from their
roles (`role_scopes`), so a signed-in editor user and an API key are checked the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

from .problems import FieldError, Problem, invalid
from .staff import PERMISSIONS

REVEAL = "members:reveal"  # show one member's personal data in full, export everything held on them
ERASE = "members:erase"  # erase one member's personal data
EXPORT_FULL = "members:export_full"  # export every member's personal data in full
FIELDS = ("phone", "email", "name", "birthday")

# The editor's permissions (perkflow/service/staff.py, the one table of what a role may do) that
# carry a personal-data scope.
_SCOPE_OF = {"members.reveal": REVEAL, "members.erase": ERASE, "members.export_full": EXPORT_FULL}
_LOOKS_PERSONAL = re.compile(r"\d[\d\s-]{6,}\d|[^\s@]+@[^\s@]+")


def role_scopes(roles: Iterable[str]) -> frozenset[str]:
    """The personal-data scopes a person with these roles holds."""
    held = set(roles)
    return frozenset(scope for permission, scope in _SCOPE_OF.items() if held & PERMISSIONS[permission])


def mask_phone(e164: str) -> str:
    """+8613800000000 -> 138****0000: the first three and last four digits of the national number,
    the country code kept for numbers outside China."""
    number = phonenumbers.parse(e164)
    national = str(number.national_number)
    keep_head, keep_tail = (3, 4) if len(national) >= 9 else (0, 2)
    hidden = len(national) - keep_head - keep_tail
    masked = national[:keep_head] + "*" * hidden + national[len(national) - keep_tail :]
    return masked if number.country_code == 86 else f"+{number.country_code} {masked}"


def mask_email(email: str) -> str:
    """alice@example.com -> a***@example.com"""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_name(name: str) -> str:
    """张三丰 -> 张**; a one-letter name is all stars."""
    return name[:1] + "*" * (len(name) - 1) if len(name) > 1 else "*"


def mask_birthday(iso: str) -> str:
    """1990-05-17 -> ****-05-17: month and day are what the scheduler already uses."""
    return "****" + iso[4:]


MASKS = {"phone": mask_phone, "email": mask_email, "name": mask_name, "birthday": mask_birthday}


def masked(personal: dict[str, str | None]) -> dict[str, str | None]:
    return {f: (MASKS[f](v) if v is not None else None) for f, v in personal.items()}


def reason_problem(reason: object, pointer: str = "/reason") -> Problem | None:
    """A reason is required, and goes to the audit log, which never holds personal data: one
    that contains a phone number or an email address is refused."""
    if not isinstance(reason, str) or not reason.strip():
        return invalid("a reason is required", [FieldError(pointer, "missing_reason", "say why, in a few words")], code="missing_reason")
    if len(reason) > 500:
        return invalid("the reason is too long", [FieldError(pointer, "wrong_type", "a reason is at most 500 characters")], code="wrong_type")
    return personal_in_reason(reason, pointer)


def personal_in_reason(reason: str, pointer: str = "/reason") -> Problem | None:
    """A problem when a reason bound for the audit log holds a phone number or an email address."""
    if _LOOKS_PERSONAL.search(reason):
        return invalid(
            "the reason holds personal data",
            [FieldError(pointer, "personal_data_in_reason", "the audit log never holds phone numbers or email addresses: name the member by id")],
            code="personal_data_in_reason",
        )
    return None
