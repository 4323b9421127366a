"""The ECS world of gridtape: element tables of component columns, the schema registry,
and the case readers and writers."""
from .schema import KINDS, KIND_ORDER, SCHEMA_VERSION, Column, KindSpec, fingerprint, spec
from .world import Table, World, world_from_frames

__all__ = ["KINDS", "KIND_ORDER", "SCHEMA_VERSION", "Column", "KindSpec", "Table", "World",
           "fingerprint", "spec", "world_from_frames"]
