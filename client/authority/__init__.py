"""The bank authority's half of the loop: an account on the relay that opens its mailbox (reports,
submissions, appeals), keeps an SQLite store with an append-only audit log, applies reviewers' decisions to
the hash bank and publishes a new signed snapshot after every change.

Modules: ``items`` (the sealed envelope formats both sides share), ``store`` (the authority's SQLite store),
``inbox`` (open, validate and dispatch sealed items by kind), ``workflow`` (decision -> bank change ->
rebuild -> sign -> publish), ``service`` (the ``authority serve`` loop, the only one here with a socket),
``commands`` (the CLI), ``console`` (the reviewers' Textual console).

The OPRF evaluation service for OPRF-keyed snapshots: ``oprf_service`` (the ``authority oprf`` websocket
server), ``ratelimit`` (its pure per-account/per-address limits), ``oprf_commands`` (``authority oprf``,
``authority oprf-keygen``).
"""
