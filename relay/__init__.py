"""The dumb relay: store-and-forward of opaque envelopes over WebSockets."""
