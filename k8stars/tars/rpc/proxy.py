"""Client proxies: the caller's side of an IDL interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from k8stars.tars.interface import Interface


class ServantProxy:
    """Base of generated proxy classes; generated methods call :meth:`tars_invoke`."""

    __tars_interface__: ClassVar[Interface]

    async def tars_invoke(self, func: str, args: Sequence[Any]) -> Any:
        raise NotImplementedError
