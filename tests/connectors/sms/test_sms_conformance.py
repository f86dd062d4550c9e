"""The ``twilio`` connector passes the conformance suite every connector passes (``storesync.core.testing``).

It has no streams (it only sends), so the read checks skip; ``check()`` meets the injected 429 and 503."""

from __future__ import annotations

from storesync.connectors.sms.emulator import TwilioEmulator
from storesync.core.capabilities import OutboundMessage
from storesync.core.testing import ConnectorConformance

SID, TOKEN = "AC" + "c0" * 16, "conformance_auth_token"
TO = "+85291234567"


class TestTwilioConformance(ConnectorConformance):
    connector_type = "twilio"

    def emulator(self) -> TwilioEmulator:
        return TwilioEmulator(account_sid=SID, auth_token=TOKEN, delivery_seconds=0.05)

    def settings(self, emulator: TwilioEmulator) -> dict:
        return {"account_sid": SID, "auth_token": TOKEN, "from_number": emulator.number,
                "base_url": emulator.base_url, "http": {"backoff_base": 0.01, "backoff_max": 0.05}}

    def sample_message(self, emulator: TwilioEmulator) -> OutboundMessage:
        return OutboundMessage(to=TO, body="Your mooncakes are ready at Causeway Bay.", idempotency_key="conf-1")

    def push_state(self, emulator: TwilioEmulator, capability: str) -> int:
        return len(emulator.sends_to(TO))
