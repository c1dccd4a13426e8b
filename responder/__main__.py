"""`python -m responder` runs the CLI."""

from responder.cli import main

raise SystemExit(main())
