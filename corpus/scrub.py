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
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b"),
     "<GITHUB_TOKEN>"),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), "<SLACK_TOKEN>"),
    ("stripe_key", re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b"), "<STRIPE_KEY>"),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), "<GOOGLE_API_KEY>"),
    ("openai_key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9]{32,}\b"), "<OPENAI_KEY>"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"), "<JWT>"),
)
# `secret_key_base: "…"`, `password = "…"`, `api_key: "…"` with a long random-looking value.
_ASSIGNED = re.compile(
    r"""(?ix)\b((?:secret(?:_key)?(?:_base)?|password|passwd|api_?key|access_?token|auth_?token|
    private_?key|client_secret|signing_salt|encryption_salt)["']?\s*(?::|=>|=)\s*["'])([^"'\s]{16,})(["'])"""
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_SAFE_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "localhost", "test.com", "domain.com")


def _random_looking(value: str) -> bool:
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z\d]"))
    return classes >= 3 or (classes >= 2 and len(value) >= 32)


def scrub(text: str) -> tuple[str, Counter[str]]:
    """`text` with secrets and PII replaced, and how many of each kind were replaced."""
    counts: Counter[str] = Counter()
    for kind, pattern, placeholder in _PATTERNS:
        text, n = pattern.subn(placeholder, text)
        if n:
            counts[kind] += n

    def assigned(m: re.Match[str]) -> str:
        if not _random_looking(m.group(2)) or m.group(2).startswith("<"):
            return m.group(0)
        counts["secret_assignment"] += 1
        return f"{m.group(1)}<SECRET>{m.group(3)}"

    text = _ASSIGNED.sub(assigned, text)

    def email(m: re.Match[str]) -> str:
        domain = m.group(0).rsplit("@", 1)[1].lower()
        if domain.endswith(_SAFE_EMAIL_DOMAINS):
            return m.group(0)
        counts["email"] += 1
        return "<EMAIL>"

    text = _EMAIL.sub(email, text)

    def ip(m: re.Match[str]) -> str:
        try:
            addr = ipaddress.IPv4Address(m.group(0))
        except ValueError:
            return m.group(0)  # a version number like 1.2.3.400
        if not addr.is_global:
            return m.group(0)
        counts["ip_address"] += 1
        return "<IP_ADDRESS>"

    text = _IPV4.sub(ip, text)
    return text, counts
