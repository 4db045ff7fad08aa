"""Third-party components: plugin discovery and the rules for registering names.

A plugin is an installed package that advertises a module in the entry-point group
``promptsg.plugins``; importing that module registers its components, e.g.
``@HEADS.register_module()``. :func:`load_plugins` imports every advertised module once, on the
first look-up in any promptsg registry (``Registry.import_from_location``), so a config can name
a plugin's components without ``custom_imports``. Set ``PROMPTSG_NO_PLUGINS=1`` to skip discovery.

Names are first come, first served: a plugin cannot take a name that is already registered,
built-in or not, and ``force=True`` may replace a plugin's own earlier registration (a module
reloaded in a notebook) but never a built-in one. Both raise :class:`NameClashError`.

This module stays light (no torch, no registry import): ``promptsg.registry`` calls into it.
"""

from __future__ import annotations

import os
from importlib.metadata import EntryPoint, entry_points

from promptsg.errors import ConfigError, PromptSGError

#: Entry-point group that plugin packages advertise their module in.
PLUGIN_GROUP = 'promptsg.plugins'
#: Environment variable that turns plugin discovery off when set to a non-empty value.
DISABLE_ENV = 'PROMPTSG_NO_PLUGINS'

_loaded: dict[str, str] = {}
_discovered = False


class PluginError(PromptSGError):
    """A plugin failed to import or registers a component it may not."""


class NameClashError(PluginError, ConfigError, KeyError):
    """A component tried to take a name its registry already holds (also a ``KeyError``,
    as mmengine raises for a duplicate name)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ''


def discover_plugins(group: str = PLUGIN_GROUP) -> list[EntryPoint]:
    """Installed entry points of ``group``, sorted by name."""
    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def import_plugins(plugins: list[EntryPoint]) -> dict[str, str]:
    """Import each entry point's module; return ``{plugin name: module}``.

    Raises:
        PluginError: a plugin's import fails; the message names the plugin, its module and
            its distribution.
        NameClashError: a plugin registers a name that is taken.
    """
    done = {}
    for ep in plugins:
        try:
            ep.load()
        except NameClashError:
            raise
        except Exception as e:
            dist = getattr(ep, 'dist', None)
            source = f', installed by {dist.name} {dist.version}' if dist is not None else ''
            reason = str(e).strip().splitlines()[0] if str(e).strip() else ''
            raise PluginError(
                f"plugin '{ep.name}' ({ep.value}{source}) failed to import: "
                f'{type(e).__name__}: {reason} (uninstall it, or set {DISABLE_ENV}=1 to skip '
                'plugin discovery)'
            ) from e
        done[ep.name] = ep.value
    return done


def load_plugins() -> dict[str, str]:
    """Import every installed ``promptsg.plugins`` entry point, once per process.

    Returns ``{plugin name: module}`` of the plugins loaded so far. Later calls return at once
    (even after a failure, which is raised only the first time).
    """
    global _discovered
    if not _discovered:
        _discovered = True
        if not os.environ.get(DISABLE_ENV):
            _loaded.update(import_plugins(discover_plugins()))
    return dict(_loaded)


def _is_builtin(obj: object) -> bool:
    module = getattr(obj, '__module__', None) or ''
    return module.split('.')[0] in ('promptsg', 'mmengine', 'torch')


def _where(obj: object) -> str:
    return f'{getattr(obj, "__module__", "?")}.{getattr(obj, "__qualname__", repr(obj))}'


def check_registration(registry, module: object, names: list[str], force: bool) -> None:
    """Refuse a name clash before mmengine's ``Registry._register_module`` registers ``module``.

    Built-in components (from promptsg, mmengine or torch) register as mmengine lets them. For any
    other module the registry's built-ins are imported first, so a clash is found whatever the
    import order, and a name already held by this registry or by the mmengine registries it
    falls back to is refused; with ``force=True`` only a non-built-in holder may be replaced.

    Raises:
        NameClashError: one line naming the module, the registry kind and the name.
    """
    if _is_builtin(module):
        return
    registry.import_from_location()
    for name in names:
        holder, owner = None, registry
        while owner is not None:
            owner.import_from_location()
            if name in owner._module_dict:
                holder = owner._module_dict[name]
                break
            owner = owner.parent
        if holder is None:
            continue
        builtin = _is_builtin(holder)
        if force and not builtin and owner is registry:
            continue
        hint = 'force=True never replaces a built-in; ' if force and builtin else ''
        raise NameClashError(
            f"{_where(module)} cannot be registered as {registry.name} '{name}': the name is "
            f'taken by {"built-in " if builtin else ""}{_where(holder)} ({hint}register it under '
            "another name, register_module(name='...'))"
        )
