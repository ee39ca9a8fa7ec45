"""The demo's files: a development PKI, key rings, the members' shared key, a registered cast.

Everything lives in one folder (``.vigie-demo`` by default) so that ``vigie serve --env-file
<folder>/vigie.env`` runs the same gateway on its own afterwards. The folder carries a marker
file; a folder without it is never emptied (``--dir`` pointing at the wrong place is refused).
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway import pki
from gateway.config import Settings
from gateway.crypto import generate_key_file, load_key_file
from gateway.errors import FailedPreconditionError
from gateway.journal import load_signing_key, vkey_for
from gateway.services import load_keys
from gateway.store import Database, Member, SqlMemberRegistry, migrate

__all__ = ["CAST", "DemoFiles", "prepare"]

_MARKER: Final = ".vigie-demo"
SERVE_LISTEN: Final = "127.0.0.1:50051"


@dataclass(frozen=True, slots=True)
class Actor:
    """One certificate of the demo: ``name`` is its file name, ``member_id`` its organisation."""

    name: str
    member_id: str
    display_name: str
    kind: str
    roles: tuple[str, ...]


# The CPAM and three mutuelles are the ids `vigie synth` writes. The CPAM's data protection
# officer holds a second certificate of the CPAM: the bundles let a member's compliance officer
# audit that member's accesses and the accesses to its records and insured (rule
# common-compliance-read-event), never the whole journal. Roles are held per member.
CAST: Final = (
    Actor("cpam-75", "cpam-75", "CPAM de Paris", "AMO", ("submitter", "analyst")),
    Actor("mut-alpha", "mut-alpha", "Mutuelle Alpha", "AMC", ("submitter", "analyst")),
    Actor("mut-beta", "mut-beta", "Mutuelle Beta", "AMC", ("submitter", "analyst")),
    Actor("mut-gamma", "mut-gamma", "Mutuelle Gamma", "AMC", ("submitter", "analyst")),
    Actor("cpam-75-dpo", "cpam-75", "CPAM de Paris", "AMO", ("compliance_officer",)),
)


@dataclass(frozen=True, slots=True)
class DemoFiles:
    root: Path
    pki: Path
    members_key: Path
    env_file: Path
    database_url: str
    vkey_file: Path
    data: Path
    exports: Path

    def cert(self, name: str) -> Path:
        return self.pki / "members" / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.pki / "members" / f"{name}.key"

    @property
    def ca(self) -> Path:
        return self.pki / "ca.crt"

    def settings(self, *, listen: str = "127.0.0.1:0", bundle: str) -> Settings:
        return Settings.local(
            self.pki,
            self.root,
            listen=listen,
            database_url=self.database_url,
            journal_origin="vigie.demo/journal",
            checkpoint_interval_s=0.5,
            policy_bundle=bundle,
            rate_limit_per_s=10_000,
            rate_limit_burst=20_000,
            environment="development",
            log_level="warning",
        )


def _reset(root: Path) -> None:
    if root.exists():
        if not (root / _MARKER).is_file() and any(root.iterdir()):
            raise FailedPreconditionError(
                f"{root} exists and is not a Vigie demo folder; choose another --dir"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True, mode=0o700)
    (root / _MARKER).write_text("made by `vigie demo`; emptied by the next run\n")


def _env_file(files: DemoFiles, settings: Settings) -> None:
    names = (
        "database_url",
        "server_cert",
        "server_key",
        "client_ca",
        "crl",
        "pseudonym_keys",
        "data_keys",
        "journal_key",
        "journal_origin",
        "policy_bundle",
    )
    lines = ["# Settings of the demo's gateway: vigie serve --env-file <this file>"]
    lines.append(f"VIGIE_LISTEN={SERVE_LISTEN}")
    lines += [f"VIGIE_{n.upper()}={getattr(settings, n)}" for n in names]
    lines.append("VIGIE_ENVIRONMENT=development")
    files.env_file.write_text("\n".join(lines) + "\n")


def prepare(root: Path, *, bundle: str) -> DemoFiles:
    """Make the demo folder from scratch: PKI, keys, database with the members registered.

    Raises:
        FailedPreconditionError: ``root`` exists and is not a demo folder.
    """
    root = root.resolve()
    _reset(root)
    files = DemoFiles(
        root=root,
        pki=root / "pki",
        members_key=root / "keys" / "members-shared.key",
        env_file=root / "vigie.env",
        database_url=f"sqlite:///{root / 'vigie.db'}",
        vkey_file=root / "journal.vkey",
        data=root / "data",
        exports=root / "exports",
    )
    # 1. The CA, the server certificate and one client certificate per actor (0600 keys). A
    #    second certificate of a member is issued under the member's id, then renamed.
    pki.init_ca(files.pki)
    for actor in sorted(CAST, key=lambda a: a.name == a.member_id):
        issued = pki.issue_member(files.pki, actor.member_id, actor.kind, list(actor.roles))
        if actor.name != actor.member_id:
            for path in (issued.cert_path, issued.key_path, issued.metadata_path):
                path.rename(path.with_name(actor.name + path.suffix))
    # 2. The members' shared key (first-level tokens, held by members only) and the gateway's
    #    own rings and journal key (second level, at rest, checkpoints).
    files.members_key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    generate_key_file(files.members_key)
    settings = files.settings(bundle=bundle)
    load_keys(settings)
    journal_key = load_signing_key(settings.journal_key.read_bytes())
    files.vkey_file.write_text(vkey_for(settings.journal_origin, journal_key.public_key()) + "\n")
    # 3. The registry: each certificate pinned by its SPKI fingerprint.
    db = Database.from_url(files.database_url, threads=1)
    try:
        migrate(db.engine)
        registry = SqlMemberRegistry()
        roles: dict[str, set[str]] = {}
        for actor in CAST:
            roles.setdefault(actor.member_id, set()).update(actor.roles)
        for actor in CAST:
            cert = pki.load_certificate(files.cert(actor.name).read_bytes())
            member = Member(
                member_id=actor.member_id,
                display_name=actor.display_name,
                kind=actor.kind,  # type: ignore[arg-type]  # "AMO" | "AMC", checked by Member
                roles=frozenset(roles[actor.member_id]),
            )
            db.run_sync(
                functools.partial(registry.register_certificate, member=member, certificate=cert)
            )
    finally:
        db.close()
    _env_file(files, settings)
    return files


def members_key_bytes(files: DemoFiles) -> bytes:
    return load_key_file(files.members_key).reveal()
