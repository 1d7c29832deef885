"""Deliver: shipping a built template beyond one stack in one Region.

``catalog/`` (the stack as an AWS Service Catalog product: ``form`` the launch form and its
constraints, ``product``, ``launch_role`` the launch role's least privilege, ``portfolio``,
``export`` and ``upload``), ``stacksets/`` (CloudFormation StackSets across accounts and Regions:
``options``, ``plan``, ``render``, ``operation``) and ``multiregion`` (one stack deployed
Region by Region). Delivery builds on deploy (its engine and AWS client) and build.
"""
