"""Every exception tether raises on purpose.

```
TetherError
├── UserError                  the input is wrong; the message names the fix   (CLI exit 2)
│   ├── FileProblemsError      a file's problems, every one found, each at file:line
│   │   ├── PolicyError        a policy file problem
│   │   │   └── TenantOverlayError an overlay that would loosen its base policy
│   │   ├── SuiteError         an evaluation suite file problem
│   │   └── ConfigFileError    a gateway config file problem
│   ├── ConfigError            a bad option, model spec or setting
│   ├── UnknownComponentError  a guard or model name that no plugin registered
│   └── ApprovalError          no such approval for this tenant, or it cannot be decided or
│                              resumed (already decided, timed out, still pending)
└── RuntimeFailure             something failed while running               (CLI exit 1)
    ├── ModelError             a model adapter could not produce an answer
    │   ├── ModelNotAvailableError  the embedded model or its runtime is not installed
    │   ├── ModelHTTPError     an OpenAI-compatible server answered with an error
    │   └── ModelTimeoutError  a model did not answer in time
    ├── GuardError             a guard raised or overran its time budget (recorded, then
    │                          handled by the guard's fail mode)
    └── StoreError             the audit store's database failed
        └── StoreUnavailableError  it could not be reached (refused, dropped, timed out, locked)
```
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ApprovalError",
    "ConfigError",
    "ConfigFileError",
    "FileProblemsError",
    "GuardError",
    "ModelError",
    "ModelHTTPError",
    "ModelNotAvailableError",
    "ModelTimeoutError",
    "PolicyError",
    "Problem",
    "RuntimeFailure",
    "StoreError",
    "StoreUnavailableError",
    "SuiteError",
    "TenantOverlayError",
    "TetherError",
    "UnknownComponentError",
    "UserError",
]


class TetherError(Exception):
    """Root of every error tether raises deliberately."""


class UserError(TetherError):
    """The user's input (policy, config, option) is wrong; the message says how to fix it."""


class RuntimeFailure(TetherError):
    """Something failed at run time that the user's input did not cause."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a file, located as precisely as the file allows."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class FileProblemsError(UserError):
    """A file could not be loaded; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class PolicyError(FileProblemsError):
    """A policy file (or one of its overlay files) could not be loaded."""


class SuiteError(FileProblemsError):
    """An evaluation suite file could not be loaded."""


class ConfigFileError(FileProblemsError):
    """A gateway config file could not be loaded."""


class TenantOverlayError(PolicyError):
    """A tenant overlay tried to loosen its base policy."""

    def __init__(self, tenant: str, problems: list[Problem]) -> None:
        self.tenant = tenant
        super().__init__(problems)


class ConfigError(UserError):
    """A bad option, model spec or setting."""


class UnknownComponentError(UserError):
    """A guard, model or other component name that no plugin registered."""


class ApprovalError(UserError):
    """An approval that does not exist for this tenant, or that cannot be decided or resumed
    in its state; the message says what to do instead."""


class ModelError(RuntimeFailure):
    """A model adapter could not produce an answer."""


class ModelNotAvailableError(ModelError):
    """The embedded model or its runtime is not installed; the message names the install command."""


class ModelHTTPError(ModelError):
    """An OpenAI-compatible server answered with an error status."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ModelTimeoutError(ModelError):
    """A model did not answer within its time limit."""


class GuardError(RuntimeFailure):
    """A guard raised or overran its time budget."""


class StoreError(RuntimeFailure):
    """The audit store's database failed."""


class StoreUnavailableError(StoreError):
    """The audit store's database could not be reached: refused, dropped, timed out or locked.
    Worth retrying later; events meanwhile go to the spool."""
