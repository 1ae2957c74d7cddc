"""The project's error type for user mistakes.

A ``GpuwiseError`` carries one line that names the problem and the fix; the
CLI prints it and exits with status 2. Anything else that escapes is a bug.
"""


class GpuwiseError(ValueError):
    """A user mistake: bad input, unknown name, unusable file."""
