"""Red teaming: the obfuscations attackers use (more mutators and campaigns to come)."""

from ._obfuscate import OBFUSCATIONS, Obfuscation

__all__ = ["OBFUSCATIONS", "Obfuscation"]
