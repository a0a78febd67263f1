"""never reuse ids on SQLite

Revision ID: c8279821ab11
Revises: 5b7c2e9d1f30
Create Date: 2026-11-25 10:00:00

"""
from alembic import op

revision = 'c8279821ab11'
down_revision = '5b7c2e9d1f30'
branch_labels = None
depends_on = None

# Without AUTOINCREMENT SQLite hands out max(id) + 1, so deleting the newest image gave its id
# (and its URLs) to the next one. PostgreSQL sequences never go back: nothing to do there.
TABLES = ('batches', 'generations')


def _refuse_cascading_drop(bind):
    # Recreating `batches` drops it; with foreign keys enforced SQLite would first cascade-delete
    # every generation. The app never turns them on; switch them off in case a tool did (possible
    # only before a transaction has begun), and stop rather than lose rows if that did not work.
    bind.exec_driver_sql('PRAGMA foreign_keys=OFF')
    if bind.exec_driver_sql('PRAGMA foreign_keys').scalar():
        raise RuntimeError('turn SQLite foreign keys off (PRAGMA foreign_keys=OFF) before this migration')


def _recreate(autoincrement):
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    _refuse_cascading_drop(bind)
    for table in TABLES:
        # SQLite cannot add AUTOINCREMENT to a table: copy it into a new one, indexes and rows included.
        with op.batch_alter_table(table, recreate='always', table_kwargs={'sqlite_autoincrement': autoincrement}):
            pass


def upgrade():
    _recreate(True)


def downgrade():
    _recreate(False)
