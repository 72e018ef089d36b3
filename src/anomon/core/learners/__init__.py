"""Small River-compatible wrappers the detectors are built from."""
