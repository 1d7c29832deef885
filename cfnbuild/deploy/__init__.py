"""Deploy: from a template in ``output/`` to a stack in its wanted state, through change sets.

``engine`` (plan, deploy, delete, recover), ``aws`` (the boto3 client, its retries and its error
model), ``changeset`` (creating and waiting for change sets), ``plan`` (the plan of a change set:
its model, reading, the IAM-widening analysis, rendering, saved plans), ``events`` (stack events,
live), ``policy`` (stack policies), ``staging`` (the staging bucket for large templates),
``artifacts`` (the app artifact), ``lookups`` (deploy-time parameter lookups), ``lock`` (one
operation per stack at a time) and ``examples`` (reserved example names refused against AWS).

It never renders a template: it takes what ``cfnbuild build`` wrote (so what was linted is what
ships) and uses the project's records and build's data types (stateful marks, tags), never its
blueprints. It talks to CloudFormation through boto3, to AWS or the embedded emulator alike.
"""
