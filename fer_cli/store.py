"""``fer store gc``: remove the results of a store that no existing run refers to."""

from __future__ import annotations

from fer_cli import checks


def register(sub) -> None:
    p = sub.add_parser("store", help="the result store: gc")
    p.set_defaults(func=cmd_gc, check=check_gc)  # its one sub-command, for now
    ops = p.add_subparsers(dest="store_command", required=True,
                           help="gc: remove the results no run refers to")
    gc = ops.add_parser("gc", help="remove results no recorded, still existing run refers to "
                        "(never one a live run holds a lock on)")
    gc.add_argument("store", help="the store folder (a run's default is RUN_DIR/store)")
    gc.add_argument("--dry-run", action="store_true",
                    help="list what would be removed, and its bytes, removing nothing")
    gc.set_defaults(func=cmd_gc, check=check_gc)


def check_gc(args) -> None:
    checks.store_folder(args.store)


def cmd_gc(args) -> int:
    from fer_core.store.gc import collect

    gone = collect(args.store, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path, size in gone:
        print(f"{verb} {path} ({size:,} bytes)")
    print(f"{verb} {len(gone)} result(s), {sum(s for _, s in gone):,} bytes")
    return 0
