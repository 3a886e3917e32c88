"""Toy plugins, one file per kind, as a newcomer writes them (see docs/architecture.md).

``family.py`` (a checkpoint family), ``finder.py`` (a direction finder) and
``field.py`` (a direction field) each register themselves on import; tlgan
imports them when they are named in ``TLGAN_PLUGINS``, e.g.
``TLGAN_PLUGINS=plugins_toy.family,plugins_toy.finder,plugins_toy.field``.
``tests/test_plugins_toy.py`` runs them through ``discover``, ``fit``,
``edit`` and ``evaluate``.
"""
