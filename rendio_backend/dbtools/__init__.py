"""Database tools on psycopg: migrations, SQL splitter, advisor lints, check, snapshots.

The bottom layer: imports nothing from local, api, generation, the facades or the CLI.
"""
