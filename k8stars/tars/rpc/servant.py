"""Servants: the server side of an IDL interface."""

from __future__ import annotations

from typing import ClassVar

from k8stars.tars.interface import Interface


class Servant:
    """Base of generated servant classes. Subclass the generated ``XServant`` and implement its async methods;
    a method returns its IDL return value, or a tuple ``(ret, out1, ...)`` when the operation has out params."""

    __tars_interface__: ClassVar[Interface]
