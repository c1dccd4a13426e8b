"""Command line: argv -> subcommands (`serve`, `rules check|explain`, `approvals`, `runs`,
`migrate`, `audit prune`); no logic here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from responder import __version__

EPILOG = """\
environment (prefix RESPONDER_): LISTEN (127.0.0.1:8080), RULES_DIR (rules), DATA_DIR (./var),
WEBHOOK_TOKEN, SENTRY_CLIENT_SECRET, APPROVER_TOKENS, DRY_RUN, HTTP_ALLOWED_HOSTS (comma list),
INSECURE_NO_AUTH, LOG_FORMAT (auto|json|console), LOG_LEVEL; RESPONDER_CONFIG names a YAML
file with the same keys in lower case. See README.md.
"""

MIGRATE_DESCRIPTION = """\
Apply the PostgreSQL store's schema migrations (RESPONDER_DATABASE_URL); safe to repeat and
to run from several replicas at once. The embedded SQLite store migrates itself.

Two database roles (SQL in docs/deployment.md, "Database roles"):
  owner    owns the tables; runs `responder migrate` and `responder audit prune`
  runtime  owns nothing; `serve` connects as it. It may read and append the audit, record
           alerts and runs, and decide pending approvals; it may not update or delete audit
           rows, disable triggers or alter tables, or change a decided approval.

  RESPONDER_DATABASE_URL=<owner DSN> responder migrate --runtime-role responderd
  RESPONDER_DATABASE_URL=<runtime DSN> responder serve

Pass --runtime-role on every migrate (a new table needs its grant too). It refuses a role that
could get around the privileges (superuser, CREATEROLE, BYPASSRLS, member of the owner).
"""

CLIENT_EPILOG = """\
talks to a running daemon: --server, else RESPONDER_SERVER, else http://127.0.0.1:8080.
The bearer token comes from RESPONDER_TOKEN: an approver token (RESPONDER_APPROVER_TOKENS on
the server) to approve or reject; approver, reader or webhook token to read.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="responder",
        description="Alert-driven automated responder: receives Alertmanager, Grafana and "
        "Sentry webhooks and runs the diagnostics and containment steps your rules name.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"responder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="run the daemon (webhooks, engine, metrics)")
    serve.add_argument("--listen", help="host:port to listen on (RESPONDER_LISTEN)")
    serve.add_argument("--rules", type=Path, help="rules directory (RESPONDER_RULES_DIR)")
    serve.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="record what would run, run nothing (RESPONDER_DRY_RUN)",
    )

    migrate = sub.add_parser(
        "migrate",
        help="apply the PostgreSQL schema migrations (RESPONDER_DATABASE_URL)",
        description=MIGRATE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate.add_argument(
        "--runtime-role",
        metavar="NAME",
        help="grant NAME exactly what `serve` needs (RESPONDER_DATABASE_RUNTIME_ROLE)",
    )
    audit = sub.add_parser("audit", help="audit log maintenance")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    prune = audit_sub.add_parser(
        "prune", help="delete audit events older than AGE (the one retention path; itself audited)"
    )
    prune.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 90d (s m h d w)")

    rules = sub.add_parser("rules", help="check or explain rule files, or print their JSON Schema")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", required=True)
    check = rules_sub.add_parser(
        "check", help="validate rule files; exit 1 with one 'file:line: message' per error"
    )
    check.add_argument(
        "directory", nargs="?", type=Path, help="rules directory (default: RULES_DIR)"
    )
    explain = rules_sub.add_parser(
        "explain",
        help="show which rules match a payload, the rendered plan and which guard would stop it "
        "(no side effects)",
    )
    explain.add_argument(
        "payload", type=Path, help="webhook body (JSON file) as the sender posts it"
    )
    explain.add_argument("--rules", type=Path, help="rules directory (default: RULES_DIR)")
    explain.add_argument(
        "--source",
        choices=["alertmanager", "grafana", "sentry"],
        help="payload source (default: detected from the body)",
    )
    explain.add_argument("--sentry-resource", help="Sentry-Hook-Resource header value, if known")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    rules_sub.add_parser(
        "schema",
        help="print the JSON Schema of a rule document (rules/schema.json; see docs/rules.md)",
    )
    _add_client_commands(sub)
    return parser


def _add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`approvals list|approve|reject` and `runs list|show|timeline` against a daemon."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        metavar="URL",
        help="daemon URL (RESPONDER_SERVER, default http://127.0.0.1:8080)",
    )

    def leaf(
        group: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
    ) -> argparse.ArgumentParser:
        return group.add_parser(
            name,
            parents=[common],
            help=help_text,
            epilog=CLIENT_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    approvals = sub.add_parser("approvals", help="list and decide approvals (HTTP client)")
    approvals_sub = approvals.add_subparsers(
        dest="approvals_command", metavar="SUBCOMMAND", required=True
    )
    listing = leaf(approvals_sub, "list", "list approvals, newest first")
    listing.add_argument("--status", help="pending, approved, rejected, expired or cancelled")
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    for verb in ("approve", "reject"):
        decide = leaf(approvals_sub, verb, f"{verb} a pending step (approver token)")
        decide.add_argument("approval_id", metavar="ID")
        decide.add_argument("--comment", metavar="TEXT", help="recorded in the audit trail")
        decide.add_argument("--json", action="store_true", help="print the API's JSON")

    runs = sub.add_parser("runs", help="what the automation did (HTTP client)")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="SUBCOMMAND", required=True)
    runs_list = leaf(runs_sub, "list", "runs, newest first")
    runs_list.add_argument("--rule", help="only this rule id")
    runs_list.add_argument("--status", help="only runs in this state (e.g. waiting_approval)")
    runs_list.add_argument("--limit", type=int, help="at most N runs (default 50, max 500)")
    runs_list.add_argument("--json", action="store_true", help="print the API's JSON")
    show = leaf(runs_sub, "show", "one run: steps and audit trail")
    show.add_argument("run_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print the API's JSON")
    timeline = leaf(runs_sub, "timeline", "a run's post-incident timeline")
    timeline.add_argument("run_id", metavar="ID")
    timeline.add_argument(
        "--markdown", action="store_true", help="the '## Timeline' section for a post-mortem"
    )
    timeline.add_argument("--json", action="store_true", help="print the API's JSON")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `responder` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from responder.commands.serving import serve

        return serve(listen=args.listen, rules_dir=args.rules, dry_run=args.dry_run)
    if args.command == "migrate":
        from responder.commands.migrating import migrate_command

        return migrate_command(out=sys.stdout, err=sys.stderr, runtime_role=args.runtime_role)
    if args.command == "audit":
        from responder.commands.pruning import prune_command

        return prune_command(args.older_than, out=sys.stdout, err=sys.stderr)
    if args.command == "approvals":
        from responder.commands.client import approvals_command

        return approvals_command(
            args.approvals_command,
            approval_id=getattr(args, "approval_id", None),
            status=getattr(args, "status", None),
            comment=getattr(args, "comment", None),
            as_json=args.json,
            server=args.server,
            out=sys.stdout,
            err=sys.stderr,
        )
    if args.command == "runs":
        from responder.commands.client import runs_command

        return runs_command(
            args.runs_command,
            run_id=getattr(args, "run_id", None),
            rule=getattr(args, "rule", None),
            status=getattr(args, "status", None),
            limit=getattr(args, "limit", None),
            as_json=args.json,
            markdown=getattr(args, "markdown", False),
            server=args.server,
            out=sys.stdout,
            err=sys.stderr,
        )
    if args.rules_command == "schema":
        from responder.commands.rule_schema import schema_command

        return schema_command(out=sys.stdout)
    if args.rules_command == "check":
        from responder.commands.checking import check_rules

        return check_rules(args.directory, out=sys.stdout, err=sys.stderr)
    from responder.commands.explaining import explain

    return explain(
        args.payload,
        rules_dir=args.rules,
        source=args.source,
        sentry_resource=args.sentry_resource,
        as_json=args.json,
        out=sys.stdout,
        err=sys.stderr,
    )
