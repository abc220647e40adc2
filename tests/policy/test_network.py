"""The policy's network section: parsed from YAML, errors with file, line and field, deny
beats allow, wildcards below a domain only, per-run overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.egress import network_rules
from agent.errors import ConfigError
from policies import PolicyError, load_policy
from policies.network import NetworkRules, parse_host_pattern

POLICY = """\
name: web
network:
  mode: allowlist
  allow: [example.com, "*.example.org", "10.0.0.5:8443"]
  deny: ["ads.example.org"]
  methods: read_only
rules:
  - {id: ui.allow, effect: allow, reason: r, match: {actions: [click]}}
"""


def load(tmp_path: Path, text: str) -> NetworkRules:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return load_policy(path).network


def test_a_profile_network_section_is_compiled(tmp_path: Path) -> None:
    rules = load(tmp_path, POLICY)
    assert rules.mode == "allowlist"
    assert rules.methods == "read_only"
    assert rules.describe()["allow"] == ["example.com", "*.example.org", "10.0.0.5:8443"]


@pytest.mark.parametrize(("host", "port", "method", "effect", "rule"), [
    ("example.com", 443, "CONNECT", "allow", "network.allow:example.com"),
    ("www.example.com", 443, "CONNECT", "ask", "network.unlisted"),
    ("docs.example.org", 443, "CONNECT", "allow", "network.allow:*.example.org"),
    ("a.b.example.org", 80, "GET", "allow", "network.allow:*.example.org"),
    ("example.org", 443, "CONNECT", "ask", "network.unlisted"),
    ("ads.example.org", 443, "CONNECT", "deny", "network.deny:ads.example.org"),
    ("10.0.0.5", 8443, "CONNECT", "allow", "network.allow:10.0.0.5:8443"),
    ("10.0.0.5", 443, "CONNECT", "deny", "network.unlisted-address"),
    ("example.com", 80, "POST", "deny", "network.read_only"),
    ("notexample.com", 443, "CONNECT", "ask", "network.unlisted"),
])
def test_decisions(tmp_path: Path, host: str, port: int, method: str, effect: str,
                   rule: str) -> None:
    decision = load(tmp_path, POLICY).decide(host, port, method)
    assert (decision.effect, decision.rule) == (effect, rule)


def test_only_an_entry_naming_an_address_lifts_the_private_address_refusal(
        tmp_path: Path) -> None:
    rules = load(tmp_path, POLICY)
    assert rules.decide("10.0.0.5", 8443, "CONNECT").addresses_allowed
    assert not rules.decide("example.com", 443, "CONNECT").addresses_allowed


def test_a_policy_without_a_network_section_has_none(tmp_path: Path) -> None:
    rules = load(tmp_path, POLICY.split("network:")[0] + POLICY.split("methods: read_only\n")[1])
    assert rules.mode == "off"
    assert rules.decide("example.com", 443, "CONNECT").effect == "deny"


@pytest.mark.parametrize(("text", "line", "field", "words"), [
    (POLICY.replace("mode: allowlist", "mode: some"), 3, "network.mode", "'off'"),
    (POLICY.replace('"10.0.0.5:8443"', '"bad host!"'), 4, "network.allow[2]", "not a host name"),
    (POLICY.replace('"ads.example.org"', '"x.org:99999"'), 5, "network.deny[0]", "bad port"),
    (POLICY.replace("methods: read_only", "verbs: all"), 6, "network.verbs", "Extra"),
])
def test_bad_network_entries_name_file_line_and_field(tmp_path: Path, text: str, line: int,
                                                      field: str, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert f"policy.yaml:{line}" in message
    assert field in message
    assert words in message


def test_allow_host_adds_entries_and_turns_off_into_allowlist() -> None:
    rules = network_rules(NetworkRules(deny=(parse_host_pattern("evil.example"),)),
                          allow_hosts=["wiki.example", "evil.example"])
    assert rules.mode == "allowlist"
    assert rules.decide("wiki.example", 443, "CONNECT").rule == "network.allow:wiki.example"
    assert rules.decide("evil.example", 443, "CONNECT").effect == "deny"  # deny beats allow


def test_a_bad_allow_host_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"--allow-host: 'no such' is not a host name"):
        network_rules(NetworkRules(), allow_hosts=["no such"])


def test_network_full_is_recorded_as_full_mode() -> None:
    assert network_rules(NetworkRules(), full=True).mode == "full"


def test_full_network_and_allowed_hosts_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="--network or --allow-host, not both"):
        network_rules(NetworkRules(), allow_hosts=["wiki.example"], full=True)


def test_policy_check_summarises_the_network_section(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert ("network: allowlist: example.com, *.example.org, 10.0.0.5:8443; deny "
            "ads.example.org; read only") in result.output
