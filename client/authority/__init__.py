"""The bank authority's network services that are not the relay (the OPRF evaluation service)."""
