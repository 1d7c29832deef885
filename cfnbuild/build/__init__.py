"""Build: blueprints render a stack's CloudFormation template, and the gates check it.

``blueprint`` (the base class), ``inputs`` (typed, documented blueprint inputs), ``stack`` (the
template being assembled: outputs, exports, checkov skips, accepted rule-pack findings, lookups,
artifacts, the outputs of other stacks it uses), ``naming`` (logical IDs, physical and export
names), ``tags``, ``stateful`` (what keeps data and how it is kept), ``grants`` and
``managed_policies`` (IAM only through typed grants), ``lookups`` (the lookup kinds a template
records), ``references`` (what a stack takes of another stack's outputs, as its template records
it), ``external`` (a typed handle on a resource of another stack, which grants scope by ARN),
``lint`` (cfn-lint and checkov over what was written) and ``graph`` (the critical path of
the resources within one stack). Build knows nothing of AWS accounts: it imports no deploy,
delivery or CLI module.
"""
