"""Upgrading deployed stacks to a new layout of the project's stacks with CloudFormation stack refactoring.

:mod:`.moves` works out which deployed resource goes to which stack (and refuses what a refactor
cannot do), :mod:`.resolve` and :mod:`.templates` make the templates the refactor is created
with from the deployed definitions, :mod:`.aws_refactor` makes the four calls, :mod:`.run` is the
command, :mod:`.finish` the deploys of the project's templates after it.
Stack refactoring: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-refactoring.html
"""
