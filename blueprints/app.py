"""The project definition the ``cfnbuild`` CLI loads (``[tool.cfnbuild] app`` in pyproject.toml).

Three stacks, deployed in this order (each takes the previous ones' outputs with ``stack.use``):
``network`` and ``data`` change rarely and hold what must not be lost; ``webapp`` churns. See
the README's "Why three stacks" and :mod:`blueprints.webapp`.

The Service Catalog export ships ONE product, the same blueprints composed into one stack
(:func:`~blueprints.webapp.build_all_in_one`), not one product per stack. A catalog end user
launches one product from a form: three products would make them launch network, then data,
then webapp, copying each one's outputs into the next one's form by hand (23 values for the
web app), with nothing to stop a wrong order or a typo; and a catalog launch gets none of what
the split buys an operator here (the stack policy per stateful stack is the deploy's, not the
catalog's). The one product keeps its name (``webapp-<env>``), its version history and, since
the all-in-one composition renders byte for byte what the single stack did, its template.
"""

from __future__ import annotations

from blueprints.config import WebAppConfig
from blueprints.webapp import build_all_in_one, build_data, build_network, build_webapp
from cfnbuild import App, StackSpec

app = App(
    config_model=WebAppConfig,
    stacks=[
        StackSpec("network", build_network, "The KMS key, VPC, subnets, NAT, flow logs and security groups."),
        StackSpec("data", build_data, "The database and its secret, the S3 buckets, the log groups and alarm topic."),
        StackSpec("webapp", build_webapp, "The load balancer, the app servers, alarms and budget."),
    ],
    catalog=StackSpec("webapp", build_all_in_one, "Every layer in one stack: the Service Catalog product."),
)
