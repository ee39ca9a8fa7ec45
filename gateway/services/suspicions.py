"""SuspicionService: thin adapter from protobuf to the domain (filled in by its issue).

Until its handlers land, every method inherits the generated base class, which raises
``NotImplementedError``: the pipeline answers UNIMPLEMENTED after identity, purpose, policy
and journal have run.
"""

from __future__ import annotations

from gateway._proto.vigie.v1 import suspicions_pb2_grpc
from gateway.services._deps import Deps

__all__ = ["SuspicionServicer"]


class SuspicionServicer(suspicions_pb2_grpc.SuspicionServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
