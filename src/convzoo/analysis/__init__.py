"""Layer arithmetic: closed forms for teaching (`formulas`) and real counts (`profile`)."""

from . import formulas
from .profile import LayerRow, Profile, summary

__all__ = ["formulas", "LayerRow", "Profile", "summary"]
