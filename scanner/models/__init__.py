"""Shipped model files: the pocketscan-embed ONNX network, its JSON sidecar and seed (see MODEL.md)."""
