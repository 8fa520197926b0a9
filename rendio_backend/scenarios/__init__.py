"""Client flows played against any Supabase running Rendio's schema: `rendio simulate`.

Each flow drives the system as the iOS app does, over HTTP through the library's
client (PostgREST, Auth, Storage and the HTTP API), and returns a `FlowReport` of steps,
each with what the spec expects and what was observed. `runner.run_flows` runs them.

What only Apple can make (DeviceCheck tokens, StoreKit signatures, Sign in with Apple
id_tokens) is injected through `SimulationOptions`: the CLI passes the local stack's
fakes, and without them the flows that need them are skipped with the reason. Nothing
here imports the local stack.

This module stays light (the CLI reads `FLOW_NAMES` while building `--help`).
"""

from __future__ import annotations

# The order of `rendio simulate all`: `load` last, its verify_ledger covers every flow.
FLOW_NAMES = ("onboarding", "generate", "failure-refund", "idempotency",
              "insufficient-credits", "rate-limit", "purchase", "apple-link", "security",
              "load")
