"""Storage: attack hits and attacks in SQLite (default) or PostgreSQL, through SQLAlchemy."""

from storage.models import Attack, Base, Hit
from storage.store import AttackRecord, AttackStore, HitRecord, StorageError

__all__ = ["Attack", "AttackRecord", "AttackStore", "Base", "Hit", "HitRecord", "StorageError"]
