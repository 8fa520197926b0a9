"""Client flows played against any Supabase running Rendio's schema.

Each flow drives the system the way the app does (through the library's public
facades, so over HTTP) and returns a report; the CLI only prints it. `rendio demo` runs
`demo`; `rendio simulate` will run the others.
"""
