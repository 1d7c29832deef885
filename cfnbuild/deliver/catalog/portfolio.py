"""The portfolio: a Service Catalog portfolio offering the product, as a blueprint of its own stack.

``portfolio.json`` holds the portfolio, the product (a provisioning artifact per kept version,
each read from the staging bucket), their association, the principal that may launch it (a
parameter) and a launch role constraint whose role is granted exactly what the product's
resource types need (:mod:`.launch_role` says what; :func:`cfnbuild.build.provisioning.grant_provisioning`
grants it).

AWS reference: launch roles (https://docs.aws.amazon.com/servicecatalog/latest/adminguide/constraints-launch.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from troposphere import GetAtt, Ref, Sub, servicecatalog

from cfnbuild.build.blueprint import Blueprint
from cfnbuild.build.grants import ServiceRole
from cfnbuild.build.inputs import setting
from cfnbuild.build.provisioning import (
    LaunchScope,
    ProvisioningActions,
    grant_provisioning,
    grant_service_catalog_template_read,
    grant_ssm_parameters_read,
    grant_stack_operations,
)
from cfnbuild.deliver.catalog.launch_role import SERVICE_CATALOG_STACKS
from cfnbuild.deliver.catalog.product import Version

STAGING_BUCKET_PARAMETER = "StagingBucketName"
PRINCIPAL_PARAMETER = "PrincipalArn"
PRINCIPAL_PATTERN = r"^arn:aws[a-z-]*:iam::\d{12}:(role|user|group)/[A-Za-z0-9+=,.@_/-]{1,512}$"
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"

# What checkov reports on a policy that grants provisioning actions on "*", and why each finding
# is the documented exception rather than a mistake (see cfnbuild.build.provisioning.grant_provisioning). The
# IAM and KMS statements are in policies of their own, scoped, and carry no skip; with iam:PassRole
# and the other IAM actions off "*", privilege escalation (CKV_AWS_110) is no longer reported.
_STAR = (
    "the product's resources are created by Service Catalog at launch, in a stack that does not exist yet, "
    "with IDs made at creation, so no ARN can name them; the actions are exactly those the resource schemas of "
    "the product's types list for the services it uses, and of IAM and KMS only those that support no "
    "resource-level permission"
)
PROVISIONING_SKIPS: dict[str, str] = {
    "CKV_AWS_107": f"credentials-exposing actions on '*': {_STAR}",
    "CKV_AWS_108": f"data-reading actions on '*': {_STAR}",
    "CKV_AWS_109": f"permission-management actions on '*' (e.g. bucket and key policies of the product): {_STAR}",
    "CKV_AWS_111": f"write actions on '*': {_STAR}",
}


@dataclass(frozen=True)
class PortfolioInputs:
    """What the portfolio offers, and the defaults of its launch-time parameters."""

    product_name: str = setting(doc="The product's name in the catalog.")
    product_description: str = setting(doc="What the product is, shown to end users.")
    versions: tuple[Version, ...] = setting(doc="Every version offered, oldest first: one provisioning artifact each.")
    resource_types: tuple[str, ...] = setting(
        doc="The resource types the product makes: the launch role may manage these."
    )
    regions: tuple[str, ...] = setting(
        ("us-east-1",), "Regions whose resource schemas the launch role's actions come from."
    )
    ssm_parameters: tuple[str, ...] = setting((), "SSM parameters the product's template resolves at launch.")
    display_name: str = setting("", "Default of the PortfolioDisplayName parameter.")
    provider_name: str = setting(
        "", "Default of the ProviderName parameter (the portfolio's provider, the product's owner)."
    )
    launch_scope: LaunchScope | None = setting(
        None,
        "The names the launched stacks give and what the product's roles and keys need (see launch_scope); "
        "None: SC-* stacks, no role passed, no policy attached, no key used, every service the schemas name.",
    )


class Portfolio(Blueprint[PortfolioInputs]):
    """A Service Catalog portfolio offering one product, with a principal and a launch role constraint."""

    portfolio_id: Ref
    product_id: Ref
    launch_role_arn: GetAtt
    provisioning: ProvisioningActions

    def validate(self) -> None:
        """Refuse what Service Catalog would refuse later, with the fix."""
        i = self.inputs
        if not i.versions:
            raise self.invalid("versions", "is empty; export at least one version of the product")
        if len({v.version for v in i.versions}) != len(i.versions):
            raise self.invalid("versions", "names a version twice; each provisioning artifact needs its own name")
        if not 1 <= len(i.display_name) <= 100:
            raise self.invalid("display_name", f"is {len(i.display_name)} characters; Service Catalog takes 1 to 100")
        if not 1 <= len(i.provider_name) <= 50:
            raise self.invalid("provider_name", f"is {len(i.provider_name)} characters; Service Catalog takes 1 to 50")

    def build(self) -> None:
        """Parameters, portfolio, product, associations, launch role and its constraint, outputs."""
        parameters = self.parameters()
        portfolio = self.add(
            servicecatalog.Portfolio(
                self.lid("Portfolio"),
                DisplayName=Ref(parameters["display"]),
                ProviderName=Ref(parameters["provider"]),
                Description=self.inputs.product_description,
            )
        )
        product = self.product(parameters)
        association = self.add(
            servicecatalog.PortfolioProductAssociation(
                self.lid("ProductAssociation"), PortfolioId=Ref(portfolio), ProductId=Ref(product)
            )
        )
        self.add(
            servicecatalog.PortfolioPrincipalAssociation(
                self.lid("PrincipalAssociation"),
                PortfolioId=Ref(portfolio),
                PrincipalARN=Ref(parameters["principal"]),
                PrincipalType="IAM",
            )
        )
        role = self.launch_role()
        constraint = servicecatalog.LaunchRoleConstraint(
            self.lid("LaunchConstraint"),
            PortfolioId=Ref(portfolio),
            ProductId=Ref(product),
            RoleArn=role.arn,
            Description="Launch, update and terminate the product with the launch role, not the user's credentials",
        )
        # Service Catalog accepts a constraint only for a product already in the portfolio; the
        # constraint refers to both but not to their association, so the order must be stated.
        constraint.DependsOn = [association.title]
        self.add(constraint)
        self.portfolio_id, self.product_id, self.launch_role_arn = Ref(portfolio), Ref(product), role.arn
        self.output("PortfolioId", self.portfolio_id, "ID of the Service Catalog portfolio.")
        self.output("ProductId", self.product_id, "ID of the Service Catalog product.")
        self.output("LaunchRoleArn", self.launch_role_arn, "ARN of the role the product is launched with.")

    def parameters(self) -> dict[str, Any]:
        """The launch-time parameters: names, the principal, and the staging bucket."""
        return {
            "display": self.parameter(
                "PortfolioDisplayName",
                Type="String",
                Default=self.inputs.display_name,
                MinLength=1,
                MaxLength=100,
                Description="The portfolio's name in the catalog.",
            ),
            "provider": self.parameter(
                "ProviderName",
                Type="String",
                Default=self.inputs.provider_name,
                MinLength=1,
                MaxLength=50,
                Description="Who provides the portfolio; also the product's owner.",
            ),
            "principal": self.parameter(
                PRINCIPAL_PARAMETER,
                Type="String",
                AllowedPattern=PRINCIPAL_PATTERN,
                ConstraintDescription="the ARN of an IAM role, user or group: arn:<partition>:iam::<account>:role/Name",
                Description="The IAM role, user or group that may launch the product.",
            ),
            "bucket": self.parameter(
                STAGING_BUCKET_PARAMETER,
                Type="String",
                AllowedPattern=BUCKET_PATTERN,
                ConstraintDescription="an S3 bucket name (cfnbuild export --upload sets it)",
                Description="The staging bucket holding the product templates (set by cfnbuild export --upload).",
            ),
        }

    def product(self, parameters: Mapping[str, Any]) -> servicecatalog.CloudFormationProduct:
        """The product, with one provisioning artifact per version, each read from the staging bucket."""
        artifacts = [
            servicecatalog.ProvisioningArtifactProperties(
                Name=version.version,
                Description=version.description,
                Info=servicecatalog.Info(
                    LoadTemplateFromURL=Sub(
                        "https://${Bucket}.s3.${AWS::Region}.${AWS::URLSuffix}/" + version.key,
                        Bucket=Ref(parameters["bucket"]),
                    )
                ),
                Type="CLOUD_FORMATION_TEMPLATE",
            )
            for version in self.inputs.versions
        ]
        return self.add(
            servicecatalog.CloudFormationProduct(
                self.lid("Product"),
                Name=self.inputs.product_name,
                Owner=Ref(parameters["provider"]),
                Description=self.inputs.product_description,
                ProvisioningArtifactParameters=artifacts,
            )
        )

    def launch_role(self) -> ServiceRole:
        """The role Service Catalog launches the product with: stacks, templates, and the product's types only.

        It reads the product's template from Service Catalog's own copy ("read access to the
        CloudFormation template in a service-owned Amazon S3 bucket",
        https://docs.aws.amazon.com/servicecatalog/latest/adminguide/getstarted-launchconstraint.html),
        made when the provisioning artifact is (by whoever deploys the portfolio), so it needs
        nothing of the staging bucket.
        """
        i = self.inputs
        role = ServiceRole(self, "Launch", services=["servicecatalog.amazonaws.com"])
        grant_stack_operations(role, SERVICE_CATALOG_STACKS)
        grant_service_catalog_template_read(role)
        grant_ssm_parameters_read(role, i.ssm_parameters)
        scope = i.launch_scope or LaunchScope(stack_names=SERVICE_CATALOG_STACKS)
        granted = grant_provisioning(self, role, i.resource_types, regions=i.regions, scope=scope)
        for policy in granted.unscoped:
            for check, reason in sorted(PROVISIONING_SKIPS.items()):
                self.skip_check(policy, check, reason)
            self.accept_finding(policy, ["AwsSolutions-IAM5"], f"actions and resources with wildcards: {_STAR}")
        for policy in granted.scoped:
            self.accept_finding(
                policy,
                ["AwsSolutions-IAM5"],
                "The IAM statements name the roles, instance profiles and policies of the stacks Service "
                "Catalog launches (SC-*, the names it gives them), and the KMS statements this account's "
                "and Region's keys through the services that encrypt with them (kms:ViaService): no "
                "ARN of a key or role made at launch is known before the launch.",
            )
        self.provisioning = granted.actions
        return role
