"""The named secret detectors: what each one catches, and ordinary text none of them flags."""

from __future__ import annotations

import pytest

from policies.detectors import DETECTORS

CATCHES = [
    ("openai_key", "export OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz12"),
    ("openai_key", "sk-Ab3dEf6hIj9kLmN0pQrStUvWxYz1234567890ab"),
    ("anthropic_key", "sk-ant-api03-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jh0Gf"),
    ("aws_access_key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("github_token", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
    ("github_token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv"),
    ("slack_token", "xoxb-123456789012-abcdefghij"),
    ("google_api_key", "AIzaSyA-abcdefghijklmnopqrstuvwxyz12345"),
    ("stripe_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0"),
    ("private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA"),
    ("private_key", "-----BEGIN PGP PRIVATE KEY BLOCK-----"),
    ("password_assignment", "DB_PASSWORD=correcthorse"),
    ("password_assignment", '{"api_key": "abcd1234"}'),
    ("high_entropy", "Tr0ub4dor&3"),
    ("high_entropy", "my password is P@ssw0rd!"),
    ("high_entropy", "kX9#mQ2$vL7!"),
    ("high_entropy", "token 3f9a0c2b7d1e4f5a6b7c8d9e0f1a2b3c4d5e6f7a"),
    ("high_entropy", "aG9sYTEyMzQ1Njc4OTAxMjM0NTY3OA"),
]


@pytest.mark.parametrize(("name", "text"), CATCHES)
def test_detector_catches(name: str, text: str) -> None:
    assert DETECTORS[name].found_in(text)


def test_an_anthropic_key_is_not_reported_as_an_openai_key() -> None:
    text = "sk-ant-api03-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jh0Gf"
    assert (DETECTORS["openai_key"].found_in(text), DETECTORS["anthropic_key"].found_in(text)) == (
        False, True,
    )


ORDINARY = [
    "Hello world, this is a normal sentence.",
    "Meeting at 10:30 on 2024-01-15 in room 4B.",
    "ls -la ~/Documents && cat notes.txt",
    "https://example.com/search?q=Weather2024&lang=en",
    "/home/user/Documents/Report2024-Final.docx",
    "alice.smith@example.com",
    "print(f'{total:.2f}')",
    "x = foo(1, 2); y = bar[3]",
    "version v1.2.3-beta released",
    "snake_case_identifier_name and CamelCaseName",
    "Password1 is a terrible password",
    "Windows10 COVID-19 McDonald's",
    "Aa1Aa1Aa1Aa1",
    "skip the sk- prefix",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_not_a_secret(text: str) -> None:
    assert [name for name, d in DETECTORS.items() if d.found_in(text)] == []
