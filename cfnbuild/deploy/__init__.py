"""The deploy engine: change sets, plans, events, and the commands built on them.

It never builds templates: it takes what ``cfnbuild build`` wrote to ``output/`` (so what was
linted is what ships) and talks to CloudFormation through boto3, to AWS or to the embedded
emulator alike.
"""
