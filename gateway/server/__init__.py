"""The gRPC server: assembly, call pipeline, identity, policy hook, error mapping."""

from gateway.server._app import Gateway, build_gateway, run_forever, server_options
from gateway.server._context import CallContext, Decision, current_call
from gateway.server._pipeline import ACTIONS, WRITE_ACTIONS, CallPipeline
from gateway.server._policy import DenyAll, PolicyHook

__all__ = [
    "ACTIONS",
    "WRITE_ACTIONS",
    "CallContext",
    "CallPipeline",
    "Decision",
    "DenyAll",
    "Gateway",
    "PolicyHook",
    "build_gateway",
    "current_call",
    "run_forever",
    "server_options",
]
