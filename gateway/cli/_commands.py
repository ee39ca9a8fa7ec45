"""Sub-commands of ``vigie``. Each ``_register_*`` adds one parser; REGISTRY lists them in order."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.errors import FailedPreconditionError, VigieError

__all__ = ["REGISTRY", "CliError"]


class CliError(Exception):
    """A clear, user-facing failure of a command (no traceback)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _settings(args: argparse.Namespace) -> Any:
    from gateway.config import ConfigError, load_settings

    overrides: dict[str, object] = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    env_file = getattr(args, "env_file", None)
    if env_file:
        if not Path(env_file).is_file():
            raise CliError(f"settings file not found: {env_file}", 3)
        overrides["_env_file"] = env_file
    try:
        return load_settings(**overrides)
    except ConfigError as e:
        raise CliError(str(e)) from None


def _run_async(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop is optional on some platforms
        return asyncio.run(coro)


# -- serve ---------------------------------------------------------------------------------------
def _serve(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError
    from gateway.logs import configure_logging
    from gateway.server import run_forever

    settings = _settings(args)
    configure_logging(settings.log_format, settings.log_level)
    try:
        settings.check_files()
    except ConfigError as e:
        raise CliError(f"{e}\n  (run `vigie pki init` or `make demo` first)", 3) from None
    _run_async(run_forever(settings))
    return 0


def _register_serve(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the gateway (configuration from VIGIE_* variables)")
    p.add_argument("--database-url", help="override VIGIE_DATABASE_URL")
    p.add_argument("--env-file", help="read VIGIE_* settings from this file (the environment wins)")
    p.set_defaults(func=_serve)


# -- pki -----------------------------------------------------------------------------------------
def _pki_init(args: argparse.Namespace) -> int:
    from gateway import pki

    paths = pki.init_ca(Path(args.dir), server_names=args.server_name or [])
    print(f"CA: {paths.ca_cert}\nserver certificate: {paths.server_cert}\nCRL: {paths.crl}")
    return 0


def _pki_issue(args: argparse.Namespace) -> int:
    from gateway import pki

    roles = [r for r in args.roles.split(",") if r]
    try:
        issued = pki.issue_member(Path(args.dir), args.member_id, args.kind, roles, days=args.days)
    except FailedPreconditionError as e:
        raise CliError(f"{e.message} (run `vigie pki init --dir {args.dir}` first)", 3) from None
    print(f"member certificate: {issued.cert_path}\nprivate key (0600): {issued.key_path}")
    return 0


def _pki_revoke(args: argparse.Namespace) -> int:
    from gateway import pki

    target = Path(args.certificate)
    if not target.is_file():
        raise CliError(f"certificate not found: {target}", 3)
    try:
        pki.revoke(Path(args.dir), target)
    except VigieError as e:
        raise CliError(e.message, 1) from None
    print("revoked; the revocation list was updated (the server reloads it on change)")
    return 0


def _pki_refresh_crl(args: argparse.Namespace) -> int:
    from gateway import pki

    try:
        crl = pki.refresh_crl(Path(args.dir))
    except VigieError as e:
        raise CliError(e.message, 3) from None
    print(f"CRL re-signed; valid until {crl.next_update_utc:%Y-%m-%d %H:%M} UTC")
    return 0


def _register_pki(sub: Any) -> None:
    p = sub.add_parser("pki", help="development/operations PKI: CA, server and member certificates")
    psub = p.add_subparsers(dest="pki_command", metavar="ACTION", required=True)
    init = psub.add_parser("init", help="create a CA and the server certificate")
    init.add_argument("--dir", default="var/pki")
    init.add_argument("--server-name", action="append", help="extra DNS name for the server cert")
    init.set_defaults(func=_pki_init)
    issue = psub.add_parser("issue", help="issue a member's client certificate")
    issue.add_argument("member_id")
    issue.add_argument("--kind", choices=["AMO", "AMC"], required=True)
    issue.add_argument("--roles", default="submitter,analyst")
    issue.add_argument("--days", type=int, default=365)
    issue.add_argument("--dir", default="var/pki")
    issue.set_defaults(func=_pki_issue)
    revoke = psub.add_parser("revoke", help="revoke a member certificate (updates the CRL)")
    revoke.add_argument("certificate")
    revoke.add_argument("--dir", default="var/pki")
    revoke.set_defaults(func=_pki_revoke)
    refresh = psub.add_parser(
        "refresh-crl", help="re-sign the CRL before it expires (clients are refused after)"
    )
    refresh.add_argument("--dir", default="var/pki")
    refresh.set_defaults(func=_pki_refresh_crl)


# -- members -------------------------------------------------------------------------------------
def _members_add(args: argparse.Namespace) -> int:
    from cryptography import x509

    from gateway import pki
    from gateway.store import Database, Member, SqlMemberRegistry, migrate

    path = Path(args.certificate)
    if not path.is_file():
        raise CliError(f"certificate not found: {path}", 3)
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    member_id, kind = pki.parse_member_identity(cert)
    roles = frozenset(r for r in args.roles.split(",") if r)
    member = Member(
        member_id=member_id, display_name=args.display_name or member_id, kind=kind, roles=roles
    )
    settings = _settings(args)
    db = Database.from_url(settings.database_url, threads=1)
    try:
        migrate(db.engine)
        db.run_sync(lambda s: SqlMemberRegistry().register_certificate(s, member, cert))
    except ValueError as e:
        raise CliError(str(e), 1) from None
    finally:
        db.close()
    print(f"registered {member_id} ({kind}) with roles {sorted(roles)}")
    return 0


def _register_members(sub: Any) -> None:
    p = sub.add_parser("members", help="member registry")
    msub = p.add_subparsers(dest="members_command", metavar="ACTION", required=True)
    add = msub.add_parser("add", help="register a member and pin its certificate")
    add.add_argument("certificate")
    add.add_argument("--roles", required=True, help="comma-separated: submitter,analyst,...")
    add.add_argument("--display-name")
    add.add_argument("--database-url")
    add.set_defaults(func=_members_add)


# -- health ------------------------------------------------------------------------------------
def _health(args: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        creds = grpc.ssl_channel_credentials(
            Path(args.ca).read_bytes(), Path(args.key).read_bytes(), Path(args.cert).read_bytes()
        )
    except OSError as e:
        raise CliError(f"cannot read TLS file: {e.filename}", 3) from None
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    with grpc.secure_channel(args.address, creds, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=args.timeout)
        except grpc.RpcError as e:
            print(f"unreachable: {e.code().name}")
            return 3
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def _register_health(sub: Any) -> None:
    p = sub.add_parser(
        "health", help="probe a gateway's gRPC health over mTLS (0 serving, 1 not, 3 unreachable)"
    )
    p.add_argument("--address", default="127.0.0.1:50051")
    p.add_argument("--cert", required=True, help="client certificate (PEM)")
    p.add_argument("--key", required=True, help="client private key (PEM)")
    p.add_argument("--ca", required=True, help="CA certificate that signed the server's")
    p.add_argument("--server-name", help="expected server name if not the address host")
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(func=_health)


# -- migrate -------------------------------------------------------------------------------------
def _migrate(args: argparse.Namespace) -> int:
    from gateway.store import make_engine, migrate

    engine = make_engine(_settings(args).database_url)
    migrate(engine)
    engine.dispose()
    print("schema up to date")
    return 0


def _register_migrate(sub: Any) -> None:
    p = sub.add_parser("migrate", help="apply database migrations (Alembic) and exit")
    p.add_argument("--database-url")
    p.set_defaults(func=_migrate)


# -- policy ------------------------------------------------------------------------------------
def _policy_test(args: argparse.Namespace) -> int:
    from policy import BundleError, bundle_path
    from policy.testing import main as policy_test_main

    try:
        bundle_path(args.bundle)
    except BundleError as e:
        raise CliError(str(e), 3) from None
    return policy_test_main([args.bundle])


def _register_policy(sub: Any) -> None:
    p = sub.add_parser("policy", help="legal policy bundles")
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    test = psub.add_parser("test", help="run a bundle's policy test table (exit 1 on failure)")
    test.add_argument("bundle", help="shipped bundle name (current-law, fraud-bill-2025) or folder")
    test.set_defaults(func=_policy_test)


# -- keys ----------------------------------------------------------------------------------------
def _keys_init(args: argparse.Namespace) -> int:
    from gateway.keys import init_ring

    settings = _settings(args)
    for name, folder in (("pseudonym", settings.pseudonym_keys), ("data", settings.data_keys)):
        print(f"{name} key ring {folder}: current key {init_ring(folder)}")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    from gateway.keys import rotate_ring

    settings = _settings(args)
    folder = settings.pseudonym_keys if args.ring == "pseudonym" else settings.data_keys
    try:
        kid = rotate_ring(folder)
    except VigieError as e:
        raise CliError(e.message, 3) from None
    print(f"{args.ring} key ring {folder}: new current key {kid} (older keys stay readable)")
    return 0


def _register_keys(sub: Any) -> None:
    p = sub.add_parser("keys", help="the gateway's key rings (pseudonymisation, data at rest)")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    init = ksub.add_parser("init", help="create the key rings if missing (VIGIE_*_KEYS)")
    init.set_defaults(func=_keys_init)
    rotate = ksub.add_parser("rotate", help="add a new current key version to a ring")
    rotate.add_argument("ring", choices=["pseudonym", "data"])
    rotate.set_defaults(func=_keys_rotate)


# -- demo ----------------------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from gateway.client import VigieClientError
    from gateway.demo import run_demo

    try:
        return int(_run_async(run_demo(Path(args.dir), quick=args.quick)))
    except VigieClientError as e:
        raise CliError(f"the gateway refused a demo step: {e}", 1) from None
    except VigieError as e:
        raise CliError(e.message, 2) from None


def _register_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="end-to-end demo on SQLite with a development PKI")
    p.add_argument("--dir", default=".vigie-demo", help="where the demo writes its files")
    p.add_argument("--quick", action="store_true", help="a shorter profile (used by the tests)")
    p.set_defaults(func=_demo)


from gateway.cli._audit import register as _register_audit  # noqa: E402
from gateway.cli._claims import register as _register_claims  # noqa: E402
from gateway.cli._retention import register as _register_retention  # noqa: E402
from gateway.cli._upload import register as _register_upload  # noqa: E402

REGISTRY: list[Callable[[Any], None]] = [
    _register_serve,
    _register_migrate,
    _register_health,
    _register_pki,
    _register_members,
    _register_keys,
    _register_policy,
    _register_audit,
    _register_claims,
    _register_retention,
    _register_upload,
    _register_demo,
]
