"""``socialcredit report``: issue signed credit reports, verify them offline, show the key."""

from __future__ import annotations

from pathlib import Path

import typer

from socialcredit.cli.common import console, db_option, emit_json, err_console, refusals
from socialcredit.errors import InputError, Problem
from socialcredit.ledger import Ledger

app = typer.Typer(help="Signed credit reports: issue and verify.", no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


def _ledger(ctx: typer.Context) -> Ledger:
    return Ledger.open(db_option(ctx))


@app.command("issue")
def issue(
    ctx: typer.Context,
    subject: str = typer.Argument(..., help="SCHEME:VALUE of the subject."),
    kind: str = typer.Option(
        "person",
        "--kind",
        help="person: the subject's own file (for the subject); enterprise: public entries only.",
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the PDF."),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        envvar="SOCIALCREDIT_PUBLIC_URL",
        help="The public URL of this registry (the QR code links to BASE/verify/ID).",
    ),
    key: Path | None = typer.Option(
        None, "--signing-key", envvar="SOCIALCREDIT_SIGNING_KEY", help="The private key file."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Issue a signed one-page report on SUBJECT and write it to FILE."""
    from socialcredit.publish.reports import issue_report
    from socialcredit.publish.signing import registry_signer
    from socialcredit.status.service import StatusService

    with refusals(as_json), _ledger(ctx) as ledger:
        signer = registry_signer(ledger.engine, ledger.clock.now(), key)
        rep = issue_report(
            ledger,
            StatusService(ledger).rulebooks,
            subject,
            kind,
            signer=signer,
            base_url=base_url,
        )
    output.write_bytes(rep.pdf)
    info = {
        "ok": True,
        "report_id": rep.report_id,
        "subject": rep.subject,
        "kind": rep.kind,
        "file": str(output),
        "sha256": rep.sha256,
        "key_id": rep.key_id,
        "issued_at": rep.issued_at.isoformat(),
        "verify_url": rep.verify_url,
        "font_note": rep.font_note,
    }
    if as_json:
        emit_json(info)
        return
    console.print(f"[green]Report {rep.report_id}[/green] ({rep.kind}) written to {output}")
    console.print(f"  sha256 {rep.sha256}, key {rep.key_id}; verify at {rep.verify_url}")
    if rep.font_note:
        console.print(f"  [yellow]note:[/yellow] {rep.font_note}")


@app.command("verify")
def verify(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The report (PDF)."),
    key: Path | None = typer.Option(None, "--key", help="The registry's public key (PEM)."),
    keys: Path | None = typer.Option(
        None, "--keys", help="The registry's published key set (JWKS JSON)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Check a report offline: exit 0 if it is genuine and unchanged, 2 if not.

    Give the registry's published key (--key PEM, or --keys JWKS from
    /.well-known/socialcredit-report-keys.json). Without either, the keys recorded in the
    registry database (--db) are used.
    """
    from socialcredit.publish.reports import verify_report
    from socialcredit.publish.signing import keys_from_db, keys_from_jwks, keys_from_pem

    with refusals(as_json):
        try:
            data = file.read_bytes()
        except OSError as e:
            raise InputError([Problem("file", "unreadable", str(file), str(e))]) from None
        try:
            if key is not None:
                pub = keys_from_pem(key.read_bytes())
            elif keys is not None:
                pub = keys_from_jwks(keys.read_bytes())
            else:
                with Ledger.open(db_option(ctx), create=False) as ledger:
                    pub = keys_from_db(ledger.engine)
        except InputError:
            raise
        except Exception as e:
            raise InputError(
                [Problem("key", "unreadable", None, f"cannot read the public key(s): {e}")]
            ) from None
    result = verify_report(data, pub)
    if as_json:
        emit_json({**result.as_dict(), "file": str(file)})
    elif result.ok:
        console.print(
            f"[green]VALID[/green] report {result.report_id}, signed with key {result.key_id}"
        )
    else:
        err_console.print(f"[red]INVALID[/red]: {result.reason}")
    if not result.ok:
        raise typer.Exit(2)


@app.command("key")
def key_cmd(
    ctx: typer.Context,
    jwks_out: bool = typer.Option(False, "--jwks", help="Print every public key as a JWKS."),
    rotate: bool = typer.Option(
        False, "--rotate", help="Make a new signing key; the old one stays published."
    ),
    key: Path | None = typer.Option(
        None, "--signing-key", envvar="SOCIALCREDIT_SIGNING_KEY", help="The private key file."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Print the registry's public signing key (PEM), or every key (--jwks); --rotate."""
    from socialcredit.publish import signing

    with refusals(as_json), _ledger(ctx) as ledger:
        now = ledger.clock.now()
        signer = (
            signing.rotate(ledger.engine, now, key)
            if rotate
            else signing.registry_signer(ledger.engine, now, key)
        )
        doc = signing.jwks(ledger.engine)
    if jwks_out:
        emit_json(doc)
    elif as_json:
        emit_json(
            {"key_id": signer.key_id, "pem": signer.public_pem(), "private_key": str(signer.path)}
        )
    else:
        typer.echo(signer.public_pem(), nl=False)
        err_console.print(f"key id {signer.key_id} (private key: {signer.path})")
