"""Which queues a worker consumes, in the order it serves them: its own interactive lane, its
own batch lane (the broker transport serves queues in the order given), then the shared ones.

Web sends each request to one worker's lanes (see workers.broker.placement), so a worker only ever
gets work for models it holds or has been chosen to load.
"""

from __future__ import annotations

from django.conf import settings

from workers.broker import keys


def lanes_for_worker(name: str) -> list[str]:
    # Every worker pulls too: a download waits on the network, not on the device.
    return [
        keys.interactive_lane(name),
        keys.unrouted_lane(),
        keys.batch_lane(name),
        settings.CELERY_TASK_DEFAULT_QUEUE,
        keys.pulls_queue(),
    ]
