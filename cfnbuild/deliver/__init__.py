"""Deliver: shipping a built template beyond one stack in one Region.

``catalog`` (the stack as an AWS Service Catalog product: launch form, constraints, the launch
role's least privilege, the portfolio, export and upload), ``stacksets`` (CloudFormation StackSets
across accounts and Regions: options, plan, operations) and ``multiregion`` (one stack deployed
Region by Region). Delivery builds on deploy (its engine and AWS client) and build.
"""
