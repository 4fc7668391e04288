"""The evaluations: each module exposes a config dataclass and a pure ``run(cfg, seed) -> Results``."""
