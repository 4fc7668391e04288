"""The client core: a thin façade (:class:`~client.core.facade.Core`) over components with one job each.

Find a part by its module: ``facade`` (lifecycle and wiring), ``contacts``, ``messages``,
``sessions``, ``sender``, ``reports``, ``inbound``, ``snapshot`` and ``outbox``. Each component is
a plain object that takes its collaborators (store, link, hub, clock, ...) as constructor
arguments, so it is tested alone (``tests/client/core/``).
"""

from __future__ import annotations

from client.core.contacts import format_invite, parse_contact_ref
from client.core.facade import SETTINGS_MAC, Core, ProfileInUse, open_settings
from client.core.inbound import DOWNLOAD_TIMEOUT, MAX_INBOUND_ATTEMPTS
from client.core.messages import CLI_INBOX
from client.core.sessions import LOW_PREKEYS
from client.errors import UnknownContact

__all__ = ["CLI_INBOX", "DOWNLOAD_TIMEOUT", "LOW_PREKEYS", "MAX_INBOUND_ATTEMPTS", "SETTINGS_MAC", "Core",
           "ProfileInUse", "UnknownContact", "format_invite", "open_settings", "parse_contact_ref"]
