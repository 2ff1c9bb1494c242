"""Secrets and personal data scrubbed from source text, with counts per kind (for the manifest).

Patterns follow bigcode's PII pipeline and common secret scanners (detect-secrets, gitleaks): keys with a
recognisable prefix, private key blocks, assignments of long random values to secret-looking names,
e-mail addresses and IP addresses. Each is replaced by a placeholder of its kind, so code stays valid.
Private-range and documentation IPs and example.com addresses are kept: they are not personal.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "<PRIVATE_KEY>",
    ),
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "<AWS_KEY>"),
    (
        "github_token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b"),
        "<GITHUB_TOKEN>",
    ),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), "<SLACK_TOKEN>"),
    ("stripe_key", re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b"), "<STRIPE_KEY>"),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), "<GOOGLE_API_KEY>"),
    ("openai_key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9]{32,}\b"), "<OPENAI_KEY>"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"), "<JWT>"),
)
# Literal prefixes: a pattern runs only on text that contains one (`in` is a fast C scan, a regex pass
# over 150 KB is not).
_PREFIXES = {
    "private_key": ("PRIVATE KEY-----",),
    "aws_key": ("AKIA", "ASIA"),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "slack_token": ("xox",),
    "stripe_key": ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
    "google_api_key": ("AIza",),
    "openai_key": ("sk-",),
    "jwt": ("eyJ",),
}
# Lines worth the (case-insensitive, slow) assignment pattern: found on an ASCII-lowered copy (same length,
# so positions carry over) with a case-sensitive literal scan.
_SECRET_WORD = re.compile(r"secret|passw|api_?key|token|private_?key|salt")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# `secret_key_base: "…"`, `password = "…"`, `api_key: "…"` with a long random-looking value.
_ASSIGNED = re.compile(
    r"""(?ix)\b((?:secret(?:_key)?(?:_base)?|password|passwd|api_?key|access_?token|auth_?token|
    private_?key|client_secret|signing_salt|encryption_salt)["']?\s*(?::|=>|=)\s*["'])([^"'\s]{16,})(["'])"""
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")  # boundaries checked in code: lookarounds are slow
# Cheap hints first (a pattern that starts with a literal is found by a fast scan): most files have none.
_EMAIL_HINT = re.compile(r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IPV4_HINT = re.compile(r"\.\d{1,3}\.\d{1,3}\.")
_SAFE_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "localhost", "test.com", "domain.com")


def _random_looking(value: str) -> bool:
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z\d]"))
    return classes >= 3 or (classes >= 2 and len(value) >= 32)


def _on_secret_lines(text: str, fn) -> str:  # noqa: ANN001 - a re.sub callback
    lower = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
    out: list[str] = []
    pos = 0
    for m in _SECRET_WORD.finditer(lower):
        start = text.rfind("\n", 0, m.start()) + 1
        if start < pos:
            continue  # same line as the previous hit
        end = text.find("\n", m.end())
        end = len(text) if end < 0 else end
        out += [text[pos:start], _ASSIGNED.sub(fn, text[start:end])]
        pos = end
    return "".join(out) + text[pos:] if out else text


def scrub(text: str) -> tuple[str, Counter[str]]:
    """`text` with secrets and PII replaced, and how many of each kind were replaced."""
    counts: Counter[str] = Counter()
    for kind, pattern, placeholder in _PATTERNS:
        if any(p in text for p in _PREFIXES[kind]):
            text, n = pattern.subn(placeholder, text)
            if n:
                counts[kind] += n

    def assigned(m: re.Match[str]) -> str:
        if not _random_looking(m.group(2)) or m.group(2).startswith("<"):
            return m.group(0)
        counts["secret_assignment"] += 1
        return f"{m.group(1)}<SECRET>{m.group(3)}"

    text = _on_secret_lines(text, assigned)

    def email(m: re.Match[str]) -> str:
        domain = m.group(0).rsplit("@", 1)[1].lower()
        if domain.endswith(_SAFE_EMAIL_DOMAINS):
            return m.group(0)
        counts["email"] += 1
        return "<EMAIL>"

    if _EMAIL_HINT.search(text):
        text = _EMAIL.sub(email, text)

    def ip(m: re.Match[str]) -> str:
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end() : m.end() + 2]
        longer = after[:1].isdigit() or (after[:1] == "." and after[1:].isdigit())
        if before.isdigit() or before == "." or longer:
            return m.group(0)  # part of a longer number or version: 1.2.3.4.5
        try:
            addr = ipaddress.IPv4Address(m.group(0))
        except ValueError:
            return m.group(0)  # a version number like 1.2.3.400
        if not addr.is_global:
            return m.group(0)
        counts["ip_address"] += 1
        return "<IP_ADDRESS>"

    if _IPV4_HINT.search(text):
        text = _IPV4.sub(ip, text)
    return text, counts
