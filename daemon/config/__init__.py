"""VRP configuration text -> typed model, validation, and rendering back to VRP text.

Pure: no I/O beyond reading the configuration file in :func:`load`.
"""

from . import ifnames
from .ifnames import InterfaceKind
from .model import (
    BfdSession,
    DeviceConfig,
    ETrunk,
    Interface,
    Ospf,
    Pim,
    RemoteBackupProfile,
    RemoteBackupService,
    SecurityKey,
    UnknownCommand,
)
from .parser import ConfigError, load, parse
from .render import render

__all__ = [
    "BfdSession",
    "ConfigError",
    "DeviceConfig",
    "ETrunk",
    "Interface",
    "InterfaceKind",
    "Ospf",
    "Pim",
    "RemoteBackupProfile",
    "RemoteBackupService",
    "SecurityKey",
    "UnknownCommand",
    "ifnames",
    "load",
    "parse",
    "render",
]
