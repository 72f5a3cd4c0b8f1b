"""The module a Celery worker is started with: ``celery -A tiktok_assets.executors.celery_app worker``.

It imports neither the code location nor any model (the pool children fork from this process, and a
CUDA context must not be forked); the first step a child runs imports the code location.
"""

from ..config import load_settings
from .celery import worker_app

app = worker_app(load_settings())
