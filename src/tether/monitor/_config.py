"""The monitoring file: alert rules, webhooks and scheduled drift checks, checked like a policy
(unknown fields are errors, every problem reported at file:line)."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from tether.errors import ConfigFileError, PolicyError, Problem

__all__ = [
    "AlertRule",
    "DriftSchedule",
    "MonitoringConfig",
    "Signal",
    "Webhook",
    "load_monitoring",
    "load_monitoring_text",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
FinalAction = Literal["allow", "redact", "block", "escalate", "error"]
TakenAction = Literal["log", "redact", "revise", "reask", "escalate", "block", "normalize"]


def parse_duration(value: Any) -> timedelta:
    """``90s``, ``10m``, ``1.5h``, ``7d``, ``2w`` (or a number of seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if m is None:
            raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 10m, 1h or 7d")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Signal(_Strict):
    """What a rule counts, per turn: flagged by a guard (``guard``, optionally at a ``stage``
    and with a ``category``), an action the pipeline took (``taken`` at a ``stage``), a tool
    call decision (``tool``), or only how turns ended (``action``). ``action`` also narrows
    the others, ``model`` narrows all."""

    guard: str | None = Field(None, description="Guard name (e.g. injection); `any`: any guard.")
    stage: Literal["input", "output", "tool"] | None = None
    category: str | None = None
    taken: TakenAction | None = Field(None, description="An action the pipeline took.")
    tool: Literal["allow", "deny", "require_approval", "modify"] | None = Field(
        None, description="Tool calls the gate decided so (a rate per turn)."
    )
    action: FinalAction | list[FinalAction] | None = Field(None, description="How the turn ended.")
    model: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Signal:
        given = [k for k in ("guard", "taken", "tool") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of guard, taken or tool, not {' and '.join(given)}")
        if not given and self.action is None:
            raise ValueError("give guard, taken, tool or action")
        if self.taken is not None and self.stage is None:
            raise ValueError("taken needs the stage (input or output) it happens at")
        if self.category is not None and self.guard is None:
            raise ValueError("category needs a guard")
        if self.stage is not None and not (self.guard or self.taken):
            raise ValueError("stage needs a guard or taken")
        return self

    def rollup(self) -> tuple[str, str, tuple[str, ...] | None]:
        """The rollup ``(kind, key, actions)`` this signal is counted under."""
        actions = (
            None
            if self.action is None
            else (self.action,)
            if isinstance(self.action, str)
            else tuple(self.action)
        )
        if self.guard is not None:
            guard = "*" if self.guard == "any" else self.guard
            return "flag", f"{guard}|{self.stage or '*'}|{self.category or '*'}", actions
        if self.taken is not None:
            return "taken", f"{self.stage}|{self.taken}", actions
        if self.tool is not None:
            return "tool", self.tool, actions
        return "turn", "", actions

    def describe(self) -> str:
        parts = []
        if self.guard is not None:
            parts.append(f"{self.guard} flags" + (f" ({self.category})" if self.category else ""))
            if self.stage:
                parts.append(f"on {self.stage}")
        elif self.taken is not None:
            parts.append(f"{self.taken} at {self.stage}")
        elif self.tool is not None:
            parts.append(f"tool calls decided {self.tool}")
        if self.action is not None:
            ended = self.action if isinstance(self.action, str) else "/".join(self.action)
            parts.append(f"turns ending {ended}" if not parts else f"ending {ended}")
        if self.model:
            parts.append(f"on {self.model}")
        return " ".join(parts)


class AlertRule(_Strict):
    """A rule over a sliding ``window``: a rate threshold (``above``: share of turns), a count
    threshold (``count_above``), or a rate of change (``change``: the window's rate at least
    this many times the rate over the ``baseline`` period before it)."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    when: Signal
    above: float | None = Field(None, ge=0, le=1, description="Rate threshold (0..1).")
    count_above: int | None = Field(None, ge=0, description="Count threshold.")
    change: float | None = Field(None, gt=1, description="Rate multiple against the baseline.")
    window: Duration = Field(timedelta(minutes=10), description="Sliding window, e.g. 10m.")
    baseline: Duration = Field(timedelta(days=7), description="For change: the period before.")
    significance: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="For change: the rise must also be significant (one-sided two-proportion "
        "test, p below this), so a small or noisy baseline does not raise false alarms.",
    )
    min_turns: int = Field(20, ge=1, description="Fewer turns in the window: no rate judged.")
    severity: Literal["info", "warning", "critical"] = "warning"
    tenants: list[str] | None = Field(None, description="Only these tenants; default: all.")

    @model_validator(mode="after")
    def _one_test(self) -> AlertRule:
        given = [k for k in ("above", "count_above", "change") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of above (rate), count_above (count) or change (rate multiple)"
                + (f", not {' and '.join(given)}" if given else "")
            )
        return self

    @property
    def test(self) -> Literal["above", "count_above", "change"]:
        if self.above is not None:
            return "above"
        return "count_above" if self.count_above is not None else "change"

    @property
    def threshold(self) -> float:
        value = self.above if self.above is not None else self.count_above
        return float(value if value is not None else self.change or 0.0)


class Webhook(_Strict):
    """Where alerts are POSTed as JSON, retried with exponential backoff on connection
    errors, 429 and 5xx."""

    url: str = Field(..., pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    secret_env: str | None = Field(
        None,
        description="Environment variable holding a secret: the body's HMAC-SHA256 is sent as "
        "X-Tether-Signature: sha256=<hex>.",
    )
    retries: int = Field(4, ge=0, le=20, description="Retries after the first attempt.")
    backoff_s: float = Field(0.5, gt=0, description="First wait; doubles each retry.")
    timeout_s: float = Field(5.0, gt=0)
    send_resolved: bool = Field(True, description="Also POST when an alert resolves.")

    def secret(self) -> bytes | None:
        if self.secret_env is None:
            return None
        value = os.environ.get(self.secret_env)
        if not value:
            raise ValueError(f"${self.secret_env} (webhook secret_env) is not set")
        return value.encode()


class DriftSchedule(_Strict):
    """A drift check run on a schedule by the gateway's monitor."""

    every: Duration = Field(timedelta(hours=1))
    window: Duration = Field(timedelta(hours=24), description="The live window, up to now.")
    reference_suite: Path | None = Field(
        None, description="Eval suite whose inputs are the reference; default: a past window."
    )
    reference_window: Duration = Field(
        timedelta(days=7), description="The period before the live window (no suite given)."
    )
    stream: Literal["input", "output"] = "input"
    alpha: float = Field(0.01, gt=0, lt=1)
    samples: int = Field(300, ge=10, le=5000, description="Texts drawn from each side at most.")
    permutations: int = Field(500, ge=50, le=10000)
    tenants: list[str] | None = None


class MonitoringConfig(_Strict):
    """A monitoring file."""

    alerts: list[AlertRule] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)
    evaluate_every: Duration = Field(timedelta(seconds=30), description="Alert evaluation period.")
    drift: DriftSchedule | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> MonitoringConfig:
        names = [r.name for r in self.alerts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"alert names must be unique: {', '.join(dupes)}")
        return self


def load_monitoring(path: str | os.PathLike[str]) -> MonitoringConfig:
    """Load and check a monitoring file; :class:`ConfigFileError` lists every problem, each at
    file:line. A relative ``drift.reference_suite`` resolves against the file's folder."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError([Problem("monitoring file not found", str(p))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError([Problem(f"cannot read monitoring file: {exc}", str(p))]) from None
    return load_monitoring_text(text, file=str(p), base_dir=p.parent)


def load_monitoring_text(
    text: str, *, file: str = "<monitoring>", base_dir: Path | None = None
) -> MonitoringConfig:
    from tether.policy import PolicySource
    from tether.policy._loader import parse_yaml, problems_from_validation

    try:
        data, smap = parse_yaml(text, file)
    except PolicyError as exc:
        raise ConfigFileError(exc.problems) from None
    if not isinstance(data, dict):
        raise ConfigFileError([Problem("a monitoring file must be a YAML mapping", file, 1)])
    try:
        config = MonitoringConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(
            problems_from_validation(exc, PolicySource(smap), (), MonitoringConfig)
        ) from None
    drift = config.drift
    if drift is not None and drift.reference_suite is not None:
        suite = drift.reference_suite
        if not suite.is_absolute():
            suite = (base_dir or Path.cwd()) / suite
        if not suite.exists():
            raise ConfigFileError(
                [smap.problem(("drift", "reference_suite"), f"no such suite file: {suite}")]
            )
        config = config.model_copy(
            update={"drift": drift.model_copy(update={"reference_suite": suite})}
        )
    return config
