"""On-device perceptual hashing, the hash bank, its signed snapshot and the matcher."""
