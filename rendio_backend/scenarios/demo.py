"""The main job in one guest's life: sign-in, the initial grant, a paid generation with
an idempotent replay, a provider failure refunded exactly once, and the ledger checked.

Running it again is safe: provisioning and seeding are idempotent and every run acts
on a fresh guest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rendio_backend import (
    Balance,
    CreditTransaction,
    JobCreated,
    JobFailure,
    LedgerViolation,
    Model,
    ProvisionReport,
    RendioAdmin,
    RendioClient,
    RendioConfig,
    SeedReport,
)

PROMPT = "A paper boat drifting down a rainy street, cinematic"


@dataclass(frozen=True)
class DemoReport:
    """What happened, step by step, for the CLI to show."""

    api_url: str
    buckets: ProvisionReport
    models_seeded: SeedReport
    user_id: str
    device_id: str
    first_grant: bool
    second_grant: bool
    models: list[Model]
    job: JobCreated
    replay: JobCreated
    failure: JobFailure
    failure_again: JobFailure
    balance: Balance
    history: list[CreditTransaction]
    violations: list[LedgerViolation]

    @property
    def ok(self) -> bool:
        """Charged once, refunded once, and the ledger sound."""
        return (self.replay.replayed and self.replay.job_id == self.job.job_id
                and self.failure.credits_refunded == self.job.credits_used
                and self.failure_again.credits_refunded == 0 and not self.violations)


def run_demo(config: RendioConfig) -> DemoReport:
    """Provision, seed, then play one guest through a generation and a refund."""
    with RendioAdmin(config) as admin, RendioClient(config) as guest:
        buckets = admin.provision_storage()
        seeded = admin.seed_models()
        guest.sign_in_anonymously()
        user_id = guest.user_id
        # Stands in for POST /functions/v1/device/check (a DeviceCheck-verified device).
        device = f"demo-device-{uuid.uuid4()}"
        first = admin.grant_initial_credits(user_id, device)
        second = admin.grant_initial_credits(user_id, device)
        models = guest.list_models()
        key = uuid.uuid4()
        job = admin.create_job(user_id, models[0].id, PROMPT, idempotency_key=key)
        replay = admin.create_job(user_id, models[0].id, PROMPT, idempotency_key=key)
        failure = admin.fail_job(job.job_id, "provider error (demo)")
        again = admin.fail_job(job.job_id, "provider error (demo)")
        return DemoReport(
            api_url=config.base_url, buckets=buckets, models_seeded=seeded,
            user_id=str(user_id), device_id=device, first_grant=first, second_grant=second,
            models=list(models), job=job, replay=replay, failure=failure,
            failure_again=again, balance=guest.get_balance(),
            history=list(reversed(guest.credit_history(limit=10).items)),
            violations=list(admin.verify_ledger()),
        )
