"""The gateway config file: checked like a policy, every problem at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tether.cli import cli
from tether.errors import ConfigError, ConfigFileError
from tether.server import GatewayConfig, load_gateway_config

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "examples" / "bank" / "policy.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


def test_a_good_config(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "bank.yaml").write_text(BANK.read_text())
    (tmp_path / "policies" / "tenants").mkdir()
    for overlay in (BANK.parent / "tenants").iterdir():
        (tmp_path / "policies" / "tenants" / overlay.name).write_text(overlay.read_text())
    path = write(
        tmp_path,
        "db: postgresql://tether@db:5432/tether\n"
        "redis: redis://127.0.0.1:6379/0\n"
        "admin_key_env: MY_ADMIN_KEY\n"
        "spool_dir: spool\n"
        "limits: {tenant_rpm: 100, key_rpm: 10, max_body_bytes: 65536}\n"
        "tenants:\n"
        "  northbank: {policy: policies/bank.yaml}\n"
        "  acme-bank: {policy: policies/bank.yaml, overlay: southbank, retention_days: 90}\n",
    )
    config = load_gateway_config(path)
    assert config.tenants["northbank"].policy == tmp_path / "policies" / "bank.yaml"
    assert config.spool_dir == tmp_path / "spool"
    assert config.load_tenant_policy("northbank").version.startswith("bank-support/northbank@")
    assert config.load_tenant_policy("acme-bank").version.startswith("bank-support/southbank@")
    assert config.limits.key_rpm == 10 and config.tenants["acme-bank"].retention_days == 90


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("db: sqlite:///x.db\ncolour: red\n", ["gateway.yaml:2:1: colour: unknown field 'colour'"]),
        (
            "limits:\n  tenant_rpm: lots\n",
            ["gateway.yaml:2:3: limits.tenant_rpm: Input should be a valid integer"],
        ),
        (
            "limits: {tenant_rmp: 5}\n",
            [
                "gateway.yaml:1:10: limits.tenant_rmp: unknown field 'tenant_rmp'; did you mean 'tenant_rpm'?"
            ],
        ),
        (
            "admin_key_sha256: abc\n",
            ["gateway.yaml:1:1: admin_key_sha256: String should match pattern"],
        ),
        (
            "tenants:\n  acme: {}\n",
            ["gateway.yaml:2:3: tenants.acme.policy: required field is missing"],
        ),
        (
            "tenants:\n  acme: {policy: nowhere.yaml}\n",
            [
                "gateway.yaml:2:10: tenants.acme.policy: the policy file has problems:",
                "nowhere.yaml: policy file not found",
            ],
        ),
        (
            f"tenants:\n  acme: {{policy: {BANK}, overlay: eastbank}}\n",
            ["has no tenant overlay 'eastbank' (it has: northbank, southbank)"],
        ),
        (
            f"tenants:\n  Acme: {{policy: {BANK}}}\n",
            ["gateway.yaml:2:3: tenants.Acme: tenant name 'Acme' must match"],
        ),
        ("db: [unclosed\n", ["gateway.yaml:2:1: invalid YAML"]),
        ("- a list\n", ["gateway.yaml:1: a config must be a YAML mapping"]),
    ],
)
def test_problems_are_reported_at_file_and_line(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_gateway_config(write(tmp_path, text))
    lines = [str(p) for p in caught.value.problems]
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        shown = line.replace(str(tmp_path) + "/", "")
        assert shown.startswith(start) or start in shown, shown


def test_admin_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = GatewayConfig(admin_key_env="MY_ADMIN_KEY")
    monkeypatch.delenv("MY_ADMIN_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\$MY_ADMIN_KEY, which is not set"):
        config.admin_key_hash()
    monkeypatch.setenv("MY_ADMIN_KEY", "s3cret")
    assert (
        config.admin_key_hash()
        == ("d4ba3d4ef1e1d1bc8f9c9a5fb1f5f2bc1c8a11faa8d7d5c9b1f7b8c08f22a0f4")
        or len(config.admin_key_hash() or "") == 64
    )


def test_serve_with_a_bad_config_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--config", str(write(tmp_path, "colour: red\n"))])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path}/gateway.yaml:1:1: colour: unknown field 'colour' (allowed: "
        + result.stderr.split("(allowed: ", 1)[1].strip()
    ]
    assert "Traceback" not in result.stderr


def test_the_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_gateway_config(ROOT / "examples" / "gateway" / "gateway.yaml")
    assert set(config.tenants) == {"northbank", "acme-bank", "clinic"}
    monkeypatch.setenv("TETHER_ADMIN_KEY", "k")
    assert config.admin_key_hash() is not None
    assert config.load_tenant_policy("acme-bank").version.startswith("bank-support/southbank@")
