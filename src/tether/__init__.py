"""tether: the deployment-time alignment stack for LLM applications."""

from importlib.metadata import PackageNotFoundError, version

# First: it sets how long numpy's BLAS threads spin, which must happen before numpy loads.
import tether._compute  # noqa: F401
from tether.errors import PolicyError, TetherError, UserError
from tether.pipeline import Event, GuardedResponse, Guardrails, JsonlSink, MemorySink
from tether.policy import Policy, load_policy, load_policy_text
from tether.tools import tool

try:
    __version__ = version("tether")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Event",
    "GuardedResponse",
    "Guardrails",
    "JsonlSink",
    "MemorySink",
    "Policy",
    "PolicyError",
    "TetherError",
    "UserError",
    "__version__",
    "load_policy",
    "load_policy_text",
    "tool",
]
