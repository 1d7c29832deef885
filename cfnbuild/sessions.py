"""boto3 sessions that share one loader of botocore's data: what the deploy and the emulator's clients are made from.

Each botocore session makes its own loader, which parses the JSON of every service model and of
the endpoint table again: about 50 ms of CPU per session's first clients, and a deploy of
several stacks or regions (or a lookup, or the emulator's own calls) makes a session per
target. The loader only caches what it read from botocore's data files (one session already
shares it between all its clients), so every session made here shares one loader per data path
(``AWS_DATA_PATH``); credentials, profile and region stay each session's own.

boto3 and botocore are imported only when a session is made: a build never makes one.
"""

from __future__ import annotations

import threading
from typing import Any

_LOADERS: dict[Any, Any] = {}
_LOCK = threading.Lock()


def _botocore_session(profile: str | None = None) -> Any:
    """A new botocore session reading botocore's data through this process's one loader for its data path.

    Raises botocore's ``ProfileNotFound`` for a ``profile`` the AWS config files lack.
    """
    import botocore.loaders  # noqa: PLC0415  (only where a session is made)
    import botocore.session  # noqa: PLC0415

    core = botocore.session.Session(profile=profile)
    data_path = core.get_config_variable("data_path")  # reads the profile's config: ProfileNotFound if none
    with _LOCK:
        loader = _LOADERS.get(data_path)
        if loader is None:
            loader = _LOADERS[data_path] = botocore.loaders.create_loader(data_path)
    core.register_component("data_loader", loader)
    return core


def boto3_session(
    *,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    profile_name: str | None = None,
    region_name: str | None = None,
) -> Any:
    """``boto3.session.Session(...)`` with these arguments, on the shared loader (see the module)."""
    import boto3  # noqa: PLC0415  (as above)

    core = _botocore_session(profile_name)
    session = boto3.session.Session(
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        profile_name=profile_name,
        region_name=region_name,
        botocore_session=core,
    )
    with _LOCK:  # each boto3 session appends its own data directory to the loader's search paths: keep it once
        paths = core.get_component("data_loader").search_paths
        paths[:] = list(dict.fromkeys(paths))
    return session
