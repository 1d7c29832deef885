"""Customer managed KMS keys for the stack's encrypted logs and topics.

Inputs: :class:`KeysInputs`. Outputs: ``logs_key`` (the key CloudWatch Logs encrypts every log
group with) and its ARN as the ``LogsKeyArn`` output.
AWS docs: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-kms-key.html
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, kms

from cfnbuild import Blueprint, setting
from cfnbuild.build.grants import key_policy


@dataclass(frozen=True)
class KeysInputs:
    """Inputs of :class:`Keys`."""

    pending_window_days: int = setting(30, "Days a deleted key waits before it is gone (7 to 30).")
    key_services: tuple[str, ...] = setting(
        (),
        "Service principals that may encrypt with the key for this account (e.g. sns.amazonaws.com).",
    )


class Keys(Blueprint[KeysInputs]):
    """A rotating KMS key that CloudWatch Logs (and the named services) may encrypt with."""

    logs_key: kms.Key
    logs_key_arn: GetAtt

    def validate(self) -> None:
        """The pending window must be one KMS accepts."""
        if not 7 <= self.inputs.pending_window_days <= 30:
            raise self.invalid("pending_window_days", "must be 7 to 30 days")

    def build(self) -> None:
        """The key, with rotation on; it is stateful: losing it loses every log it encrypted."""
        self.logs_key = self.add(
            kms.Key(
                self.lid("LogsKey"),
                Description="Encrypts the stack's log groups and topics",
                EnableKeyRotation=True,
                PendingWindowInDays=self.inputs.pending_window_days,
                KeyPolicy=key_policy(logs=True, services=self.inputs.key_services),
            ),
            stateful=True,
        )
        self.logs_key_arn = GetAtt(self.logs_key, "Arn")
        self.output("LogsKeyArn", self.logs_key_arn, "ARN of the KMS key that encrypts the stack's logs.")
