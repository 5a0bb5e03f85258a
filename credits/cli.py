"""The `flask credits` command group."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext
from marshmallow import ValidationError
from sqlalchemy import select

from credits.auth.models import OrgKind, Role, User
from credits.auth.schemas import RegisterIn
from credits.database import in_transaction
from credits.errors import DomainError
from credits.extensions import db


@click.group("credits")
def credits_cli():
    """公益币 operations."""


@credits_cli.command("create-user")
@click.option("--phone", required=True)
@click.option("--name", required=True)
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice([r.value for r in Role]))
@click.option("--organization", "organization", default=None, help="Organisation id or exact name.")
@click.option("--merchant", "merchant_id", type=int, default=None, help="Shop id, for merchant staff.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def create_user_command(phone, name, roles, organization, merchant_id, password_stdin):
    """Create a user (a coordinator, merchant staff, admin …). The password is read from stdin or
    prompted for, never taken as an argument that `ps` would show."""
    from credits.auth.services import create_user

    organization_id = _organization_id(organization)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    try:
        data = RegisterIn().load({"phone": phone, "name": name, "password": password,
                                  "organization_id": organization_id})
        del data["code"]  # the server's operator creates the account: no SMS code, as for an admin's
        user = in_transaction(lambda: _create(create_user, data, roles, merchant_id))
    except ValidationError as exc:
        raise click.ClickException(f"invalid input: {exc.messages}") from exc
    except DomainError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message} {exc.fields or ''}".rstrip()) from exc
    click.echo(f"created user {user.id} {user.phone} ({', '.join(user.roles)}) {user.volunteer_no}")


def _organization_id(organization: str | None) -> int | None:
    """--organization as an id or, failing that, an organisation's exact name."""
    from credits.auth.models import Organization

    if organization is None:
        return None
    by_name = db.session.scalar(select(Organization.id).where(Organization.name == organization.strip()))
    db.session.rollback()
    if by_name is not None:
        return by_name
    if organization.strip().isdigit():
        return int(organization)
    raise click.ClickException(f"no organisation named {organization!r}")


@credits_cli.command("create-organization")
@click.option("--name", required=True)
@click.option("--kind", required=True, type=click.Choice([k.value for k in OrgKind]))
@with_appcontext
def create_organization_command(name, kind):
    """Create an organisation (镇党委, a 两新 enterprise or social organisation), as an admin would."""
    from credits.auth.schemas import OrganizationIn
    from credits.auth.services import create_organization

    try:
        data = OrganizationIn().load({"name": name, "kind": kind})
        org = in_transaction(lambda: create_organization(**data, actor=_Operator()))
    except ValidationError as exc:
        raise click.ClickException(f"invalid input: {exc.messages}") from exc
    except DomainError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    click.echo(f"created organisation {org.id} {org.name} ({org.kind})")


class _Operator:
    """The server's operator, acting from the shell: an admin, recorded in the audit trail as nobody (address
    'cli')."""

    id = None

    @staticmethod
    def has_role(*roles: str) -> bool:
        return Role.ADMIN in roles


def _create(create_user, data, roles, merchant_id):
    from credits.errors import InvalidInput
    from credits.merchants.models import Merchant

    merchant = db.session.get(Merchant, merchant_id) if merchant_id is not None else None
    if merchant_id is not None and merchant is None:
        raise InvalidInput(fields={"merchant": ["no such shop"]})
    user = create_user(roles=roles, **data)
    user.merchant_id = merchant.id if merchant else None
    db.session.flush()
    return user


@credits_cli.command("verify-ledger")
@with_appcontext
def verify_ledger_command():
    """Check the ledger's invariants; exit 1 naming each breach."""
    from credits.ledger.verify import verify_ledger

    breaches = verify_ledger()
    db.session.rollback()
    for breach in breaches:
        click.echo(f"BREACH {breach}", err=True)
    if breaches:
        raise SystemExit(1)
    click.echo("ledger ok")


@credits_cli.command("audit-issuance")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3660),
              help="The period to look at: the last DAYS days.")
@with_appcontext
def audit_issuance_command(days):
    """Report how coins were issued and flag what no ledger invariant can: rules past the policy's bounds,
    records filed late or for time before the claim, coordinators' own records approved by nobody else,
    volunteers approved only by whoever opened their account, bursts of new accounts on one project.
    Exit 1 when any of those is found (the tables of who issued what are for reading)."""
    from datetime import timedelta

    from credits.reports.issuance import SECTIONS
    from credits.settings.services import get_policy
    from credits.timeutil import utcnow

    end = utcnow()
    start, policy = end - timedelta(days=days), get_policy()
    findings = 0
    for section in SECTIONS:
        rows = db.session.execute(section.query(start, end, policy)).all()
        flag = " FINDING" if section.finding and rows else ""
        click.echo(f"== {section.key} ({section.title}): {len(rows)}{flag}")
        for row in rows:
            click.echo("   " + " | ".join("" if value is None else str(value) for value in row))
        findings += len(rows) if section.finding else 0
    db.session.rollback()
    if findings:
        raise SystemExit(1)


@credits_cli.command("rollup")
@with_appcontext
def rollup_command():
    """Sum finished days' transactions into ledger_days for the dashboard. Safe to run repeatedly (hourly)."""
    from credits.reports.services import roll_up_ledger
    from credits.timeutil import utcnow

    days = in_transaction(lambda: roll_up_ledger(utcnow()))
    click.echo(f"ledger days summed: {days}")


@credits_cli.command("backup")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(dest):
    """Back up the database to DEST while the app keeps serving (SQLite backup API, or pg_dump -Fc)."""
    from flask import current_app

    from credits.backup import BackupError, backup

    try:
        backup(current_app.config["SQLALCHEMY_DATABASE_URI"], dest)
    except BackupError as exc:
        click.echo(f"backup failed: {exc}", err=True)
        raise SystemExit(2) from exc
    click.echo(f"backed up to {dest} ({dest.stat().st_size} bytes)")


@credits_cli.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Load the demo data once (organisations and one user per role); print the demo sign-ins."""
    from credits.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo

    loaded = in_transaction(seed_demo)
    click.echo("demo data loaded" if loaded else "demo data already present; kept as it is")
    click.echo(f"demo sign-ins (password for all: {DEMO_PASSWORD}):")
    for phone, name, roles, _org in DEMO_USERS:
        exists = db.session.scalar(select(User.id).where(User.phone == phone))
        if exists:
            click.echo(f"  {phone}  {name}  ({', '.join(roles)})")
    db.session.rollback()


@credits_cli.command("seed-scale")
@click.option("--volunteers", default=100_000, show_default=True, type=click.IntRange(min=1))
@click.option("--projects", default=2_000, show_default=True, type=click.IntRange(min=1))
@click.option("--records", default=1_000_000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=1, show_default=True, help="Random seed: the same seed gives the same data.")
@with_appcontext
def seed_scale_command(volunteers, projects, records, seed):
    """Fill an EMPTY database with a year of invented activity at scale, for benchmarks (exit 2 otherwise)."""
    from credits.scale import COORDINATOR_PHONE, LONG_HISTORY_PHONE, SCALE_PASSWORD, Scale, ScaleRefused, seed_scale

    try:
        result = seed_scale(Scale(volunteers, projects, records, seed), echo=click.echo)
    except ScaleRefused as exc:
        db.session.rollback()
        click.echo(f"refused: {exc}", err=True)
        raise SystemExit(2) from exc
    for table, count in result["rows"].items():
        click.echo(f"  {table}: {count:,} rows")
    click.echo(f"seeded in {result['elapsed']:.0f} s; escrow holds {result['escrow']} coins")
    click.echo(f"coordinator sign-in: {COORDINATOR_PHONE} / {SCALE_PASSWORD}")
    click.echo(f"long-history volunteer: {LONG_HISTORY_PHONE} / {SCALE_PASSWORD} "
               f"({result['long_history_entries']} ledger entries)")


@credits_cli.command("expire")
@with_appcontext
def expire_command():
    """Expire what is due: lapsed check-ins and, under the coin_expiry policy, coins. Safe to run repeatedly
    (e.g. hourly from cron); a second run expires nothing more."""
    from credits.hours.services import expire_due
    from credits.merchants.services import expire_vouchers
    from credits.timeutil import utcnow

    now = utcnow()
    counts: dict[str, int] = {}
    # Vouchers first, so that coins returned from expired vouchers are back in their accounts when coins expire.
    counts.update(in_transaction(lambda: expire_vouchers(now)))
    counts.update(in_transaction(lambda: expire_due(now)))
    for name, count in counts.items():
        click.echo(f"{name}: {count}")


@credits_cli.command("worker")
@click.option("--burst", is_flag=True, help="Deliver what is due now, then exit (for tests and one-off runs).")
@with_appcontext
def worker_command(burst):
    """Deliver SMS in the foreground until stopped: RQ jobs from REDIS_URL, with the sweep that re-queues what a
    crash left behind; without REDIS_URL, from the database every SMS_SWEEP_SECONDS."""
    from flask import current_app

    from credits.notifications.worker import run

    app = current_app._get_current_object()
    where = "Redis queue" if app.config.get("REDIS_URL") else "database (no REDIS_URL)"
    click.echo(f"delivering SMS from the {where} to {app.config['SMS_BACKEND']}", err=True)
    run(app, burst=burst)


@credits_cli.command("remind")
@with_appcontext
def remind_command():
    """Send what is due: the 24 h and 2 h reminders of confirmed claims, and the messages about vouchers and coins
    expiring within 3 days. Each is sent once however often this runs (cron: every 10 minutes), or however many
    runs overlap."""
    from credits.notifications.reminders import remind

    for name, count in remind().items():
        click.echo(f"{name}: {count}")
