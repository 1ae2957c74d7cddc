"""``gpuwise.profile(...)``, ``gpuwise.predict(...)``, ``gpuwise.plan(...)``, ``gpuwise.bench(...)``.

Each of those names is also a part of the package (``gpuwise.plan`` the module, ``gpuwise.profile``
and friends subpackages), and Python binds a package's attribute to its submodule when that is first
imported, whichever function stood there before. So the modules themselves are made callable: calling
one calls the Python API's function of the same name (``gpuwise.api``), while ``import gpuwise.plan``
and ``from gpuwise.profile.run import ...`` keep working as before. Nothing here imports torch.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any


class CallableModule(types.ModuleType):
    """A module that, called, runs ``gpuwise.api.<its last name>``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._entry()(*args, **kwargs)

    def _entry(self) -> Any:
        from gpuwise import api

        return getattr(api, self.__name__.rpartition(".")[2])

    @property
    def __signature__(self) -> inspect.Signature:
        """The API function's, so that ``help`` and editors show what the call takes."""
        return inspect.signature(self._entry())


def make_callable(module_name: str) -> None:
    """Make the (already imported) module ``module_name`` callable as the API entry of its name."""
    module = sys.modules[module_name]
    if not isinstance(module, CallableModule):
        module.__class__ = CallableModule
