"""Deliver: shipping a built template beyond one stack in one Region.

``catalog/`` (the stack as an AWS Service Catalog product: ``form`` the launch form and its
constraints, ``product``, ``launch_role`` the launch role's least privilege, ``portfolio``,
``export`` and ``upload``), ``stacksets/`` (CloudFormation StackSets across accounts and Regions:
``options``, ``plan``, ``render``, ``operation``), ``multiregion`` (one stack deployed
Region by Region) and ``graph_run`` (every stack of an environment, in the order of their
cross-stack references, independent stacks side by side). Delivery builds on deploy (its
engine and AWS client) and build.
"""
