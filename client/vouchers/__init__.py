"""Threshold reporting: safety vouchers (client), the voucher book (authority), Shamir sharing.

``shamir`` is the field arithmetic, ``voucher`` the key schedule and wire format, ``book`` what the
authority holds per account and period. All three are pure; ``client.core`` and the authority's
server do the I/O.
"""
