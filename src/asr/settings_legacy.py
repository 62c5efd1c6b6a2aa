"""The flat names of settings now grouped in :class:`~asr.settings.RivaSettings` (and
:class:`~asr.dynamo.DynamoSettings`).

Retries, the circuit breaker and the reconnect backoff used to be flat fields
(``RIVA_RETRY_ATTEMPTS``, ``RivaSettings(retry_attempts=1)``); they are now fields of small
nested models (``RIVA_RETRY__ATTEMPTS``, ``RivaSettings(retry=RetrySettings(attempts=1))``);
the same for ``ASR_DYNAMO_RETRY_*``.
The flat names keep working until the next minor release, which removes them: each use
raises a :class:`DeprecationWarning`, and the first use of each name logs one warning
naming its replacement, so an operator sees it in the service's log.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from pydantic import BaseModel, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

__all__ = ["DEPRECATED_FIELDS", "FlatNamesAccepted"]

logger = logging.getLogger("asr.settings")

DEPRECATED_FIELDS = {
    "retry_attempts": ("retry", "attempts"),
    "retry_initial_backoff": ("retry", "initial_backoff"),
    "retry_max_backoff": ("retry", "max_backoff"),
    "replay_buffer_seconds": ("retry", "replay_buffer_seconds"),
    "breaker_fail_max": ("breaker", "fail_max"),
    "breaker_reset_timeout": ("breaker", "reset_timeout"),
    "reconnect_backoff_max": ("keepalive", "reconnect_backoff_max"),
}
"""Each flat field name, and the group and field that replace it (where a settings class
has that group)."""

_logged: set[str] = set()


def _deprecated(old: str, new: str) -> None:
    message = f"{old} is deprecated and removed in the next minor release; use {new}"
    warnings.warn(message, DeprecationWarning, stacklevel=2)
    if old not in _logged:
        _logged.add(old)
        logger.warning("%s", message)


def _grouped(data: dict[str, Any], flat: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the values of ``flat`` (old names) moved into their groups; a field
    the group in ``data`` sets already (by its new name) wins over the old name."""
    data = dict(data)
    for old, value in flat.items():
        group, field = DEPRECATED_FIELDS[old]
        current = data.get(group) or {}
        if isinstance(current, BaseModel):
            current = current.model_dump(exclude_unset=True)
        data[group] = {field: value} | current
    return data


def _renamed(settings_cls: type[BaseModel]) -> dict[str, tuple[str, str]]:
    """The flat names that ``settings_cls`` has a group for."""
    groups = settings_cls.model_fields
    return {old: new for old, new in DEPRECATED_FIELDS.items() if new[0] in groups}


def group_flat_names(settings_cls: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments (or a mapping to validate) with flat names moved into groups."""
    flat = {name: data[name] for name in _renamed(settings_cls) if name in data}
    if not flat:
        return data
    for old in flat:
        group, field = DEPRECATED_FIELDS[old]
        _deprecated(
            f"{settings_cls.__name__}({old}=...)", f"{group}={group.title()}Settings({field}=...)"
        )
    return _grouped({name: v for name, v in data.items() if name not in flat}, flat)


class DeprecatedEnvironment(PydanticBaseSettingsSource):
    """The flat variables of grouped fields (``RIVA_RETRY_ATTEMPTS``, the settings class's
    prefix), as values of their groups.

    Ranked below the environment source, so ``RIVA_RETRY__ATTEMPTS`` wins over
    ``RIVA_RETRY_ATTEMPTS`` when both are set.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # not asked: __call__ reads the variables itself

    def __call__(self) -> dict[str, Any]:
        # Variable names are case-insensitive, as for the other RIVA_* settings.
        environ = {name.upper(): value for name, value in os.environ.items()}
        prefix = str(self.config.get("env_prefix", "")).upper()
        flat = {}
        for old, (group, field) in _renamed(self.settings_cls).items():
            name = f"{prefix}{old.upper()}"
            if name in environ:
                _deprecated(name, f"{prefix}{group.upper()}__{field.upper()}")
                flat[old] = environ[name]
        return _grouped({}, flat)


class GroupedInit(PydanticBaseSettingsSource):
    """The keyword arguments of a settings class, flat names moved into their groups.

    Done here rather than in a validator so that ``RivaSettings(retry_attempts=1)`` keeps
    the precedence of keyword arguments over the environment's ``RIVA_RETRY__*``. The
    settings class validates mappings given directly with :func:`group_flat_names`.
    """

    def __init__(self, init: PydanticBaseSettingsSource) -> None:
        super().__init__(init.settings_cls)
        self._init = init

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._init.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return group_flat_names(self.settings_cls, self._init())


class FlatNamesAccepted(BaseSettings):
    """Settings that still take the flat names of their groups, from every source."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The deprecated flat variables rank below the grouped ones that replace them.
        init, deprecated = GroupedInit(init_settings), DeprecatedEnvironment(settings_cls)
        return init, env_settings, deprecated, dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _group_flat_names(cls, data: Any) -> Any:
        """The flat names in a mapping validated directly (``model_validate``)."""
        return group_flat_names(cls, data) if isinstance(data, dict) else data
