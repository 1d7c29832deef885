"""Deploy: from a template in ``output/`` to a stack in its wanted state, through change sets.

``engine`` (plan, stage, execute) on ``base`` (its settings and reads of the deployed stack),
``model`` (the request, the stack as deployed, what is sent, the errors), ``checks`` (is the stack
usable and free, before any change set), ``parameters`` (what is sent with the template, the
outputs of the upstream stacks it takes included) and
``followups`` (stack policy, termination protection, subscriptions, outputs file, after an
operation), ``ending`` (the deploy's last line: what happened and the command to run next); ``aws``
(the boto3 client, its retries and its error model), ``changeset`` (creating and waiting for change
sets), ``plan/`` (the plan of a change set: ``model``, ``read``, ``conditions`` (resources whose
condition is false are no Add), ``template_diff`` and ``evaluate``, ``widening`` — the IAM-widening
and security-group check — ``render`` and ``saved``), ``events`` (stack events, live), ``policy``
(stack policies), ``staging`` (the staging bucket for large templates), ``artifacts`` (the app
artifact), ``lookups`` (resolving a template's lookups), ``lock`` (one operation per stack at a
time), ``removal`` (a stack's delete: what it keeps, the watch), ``examples`` (reserved
example names refused against AWS) and ``refactor/`` (deployed resources moved into the
project's new stacks by a CloudFormation stack refactor, then the project's templates deployed).

It never renders a template: it takes what ``cfnbuild build`` wrote (so what was linted is what
ships) and uses the project's records and build's data types (stateful marks, tags, lookup
kinds), never its blueprints; when no build record vouches for a template, the project's writer
renders it to compare. It talks to CloudFormation through boto3, to AWS or the embedded emulator alike.
"""
