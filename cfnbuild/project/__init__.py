"""Project: what a checkout holds — its app, its environments' config, and the proof of its output.

``app`` (the project's stacks and environments, and :class:`~cfnbuild.project.app.DeployView`,
what a deploy reads), ``config`` (the typed config model of ``config/<env>.toml``), ``names``
(deployed stack names), ``record`` (build records: fingerprints of every input of a render),
``stack_graph`` (the order of an environment's stacks, from their cross-stack references),
``writer`` (renders an environment into ``output/``, atomically, and records it) and ``skeleton``
(the new project ``cfnbuild init`` writes, from the files in ``skeleton/files/``). Project may
render through build; it never reaches AWS.
"""
