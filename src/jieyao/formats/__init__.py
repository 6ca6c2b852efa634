"""Structural readers: each turns a blob's bytes into a small summary dataclass (keys, names, shapes,
producers) without ever deserialising or executing anything. Recognisers match rules against these."""
