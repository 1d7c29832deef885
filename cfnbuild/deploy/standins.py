"""What a deploy to the embedded emulator is given in place of what only the real account has.

A shipped config names a Route 53 hosted zone of its AWS account (prod's
``Z0123456789ABCDEFGHIJ`` for ``app.example.com``); a fresh emulator holds no zone, so the
certificate's DNS validation and the alias record would fail on ``NoSuchHostedZone``. Against
the emulator the deploy makes (or reuses) a zone for the domain there and sends its ID instead,
saying so in one line. Against AWS nothing here runs: the config's zone is used as given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from cfnbuild.deploy.aws import error_code

# Where a template names a hosted zone by ID next to the name that lives in it:
# (resource type, the list property holding them or "" for the resource's own properties).
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-route53-recordset.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-certificatemanager-certificate-domainvalidationoption.html
_ZONE_USERS = {
    "AWS::Route53::RecordSet": ("", "Name"),
    "AWS::CertificateManager::Certificate": ("DomainValidationOptions", "DomainName"),
}


@dataclass(frozen=True)
class StandInZone:
    """A hosted zone made in the emulator for a zone parameter the emulator does not hold."""

    parameter: str
    given: str  # the zone ID the config (or --param) names
    zone_id: str  # the emulator's zone, sent instead
    domain: str
    made: bool  # made by this deploy (False: an earlier deploy's, reused)

    def line(self) -> str:
        """The one line the deploy says about it."""
        how = "made" if self.made else "reusing"
        return (
            f"parameter {self.parameter}: the emulator has no hosted zone {self.given}; {how} {self.zone_id} for "
            f"{self.domain} in it and deploying with that (on AWS the deploy uses {self.given})"
        )


def zone_parameters(template: Mapping[str, Any]) -> dict[str, str]:
    """The template's parameters used as a hosted zone ID, each with the parameter naming a domain in it.

    Only a plain ``Ref`` of a parameter counts on both sides (``HostedZoneId: !Ref HostedZoneId``
    next to ``Name: !Ref DomainName``), which is how a template takes a zone from its config.
    """
    declared = template.get("Parameters", {})
    found: dict[str, str] = {}
    for resource in template.get("Resources", {}).values():
        where = _ZONE_USERS.get(resource.get("Type", ""))
        if where is None:
            continue
        for entry in _entries(resource.get("Properties") or {}, where[0]):
            zone, name = _ref(entry.get("HostedZoneId")), _ref(entry.get(where[1]))
            if zone is not None and name is not None and zone in declared and name in declared:
                found.setdefault(zone, name)
    return found


def _entries(properties: Mapping[str, Any], key: str) -> Iterator[Mapping[str, Any]]:
    if not key:
        yield properties
        return
    for entry in properties.get(key) or []:
        if isinstance(entry, Mapping):
            yield entry


def _ref(node: Any) -> str | None:
    if isinstance(node, Mapping) and list(node) == ["Ref"] and isinstance(node["Ref"], str):
        return node["Ref"]
    return None


def stand_in_zones(
    template: Mapping[str, Any], value_of: Callable[[str], str | None], route53: Any
) -> list[StandInZone]:
    """For each zone parameter whose zone the emulator lacks, a zone for its domain made there (or reused).

    ``value_of`` gives the value the deploy would send for a parameter (its default when none
    is given); an empty zone or domain is left alone (the template's condition drops the DNS
    resources then, as on AWS). A zone already made for the domain, by an earlier deploy to the
    same emulator, is reused, so a redeploy sends the same ID and changes nothing.
    """
    stand_ins = []
    for parameter, domain_parameter in sorted(zone_parameters(template).items()):
        given, domain = value_of(parameter), value_of(domain_parameter)
        if not given or not domain or _zone_exists(route53, given):
            continue
        zone_id, made = _zone_for(route53, domain.rstrip("."))
        stand_ins.append(StandInZone(parameter, given, zone_id, domain.rstrip("."), made))
    return stand_ins


def _zone_exists(route53: Any, zone_id: str) -> bool:
    try:
        route53.get_hosted_zone(Id=zone_id)
    except ClientError as exc:
        if error_code(exc) in {"NoSuchHostedZone", "InvalidInput"}:
            return False
        raise
    return True


def _zone_for(route53: Any, domain: str) -> tuple[str, bool]:
    """The ID of the emulator's public zone for ``domain`` (made when there is none), and whether it was made."""
    listed = route53.list_hosted_zones_by_name(DNSName=domain).get("HostedZones", [])
    for zone in listed:
        if zone["Name"].rstrip(".") == domain and not zone.get("Config", {}).get("PrivateZone"):
            return zone["Id"].rsplit("/", 1)[-1], False
    made = route53.create_hosted_zone(Name=domain, CallerReference=f"cfnbuild-{domain}")
    return made["HostedZone"]["Id"].rsplit("/", 1)[-1], True
