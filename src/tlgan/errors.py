"""The one base of every error tlgan raises on purpose.

``TLGANError`` marks a message meant for the user (a bad option, a missing
file, a model that cannot do what was asked): the command line prints it as
one line. Any other exception is a bug and keeps its traceback. Each module's
own error class derives from it (and from the built-in class callers already
catch, e.g. ``ValueError``).
"""

from __future__ import annotations


class TLGANError(Exception):
    """An error tlgan raises on purpose, with a message that says what to do."""


class InputError(TLGANError, ValueError):
    """Input that cannot be used as given: latents of the wrong size, images of the wrong type, a bad option."""
