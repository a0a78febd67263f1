"""The local user of AUTH_MODE=none is no admin, and holds nothing once a real admin exists.

Installs made before this change have local@localhost as an admin: it stayed a hidden admin after the switch to
accounts, kept every earlier batch, and hid the sign-in page's "no admin yet" hint. The first real admin (the oldest)
takes its batches and images, and its API tokens are revoked, as creating the first admin now does.

Revision ID: d4e6f8a0b2c3
Revises: e5a7c9b1d3f4
Create Date: 2026-12-04 20:00:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "d4e6f8a0b2c3"
down_revision = "e5a7c9b1d3f4"
branch_labels = None
depends_on = None

LOCAL_EMAIL = "local@localhost"


def upgrade():
    connection = op.get_bind()
    connection.execute(sa.text("UPDATE users SET is_admin = :no WHERE email = :local"),
                       {"no": False, "local": LOCAL_EMAIL})
    local = connection.execute(sa.text("SELECT id FROM users WHERE email = :local"), {"local": LOCAL_EMAIL}).scalar()
    admin = connection.execute(sa.text(
        "SELECT id FROM users WHERE is_admin = :yes AND disabled = :no AND email <> :local ORDER BY created_at, id"),
        {"yes": True, "no": False, "local": LOCAL_EMAIL}).first()
    if local is None or admin is None:
        return
    for table in ("batches", "generations"):
        connection.execute(sa.text(f"UPDATE {table} SET owner_id = :admin WHERE owner_id = :local"),
                           {"admin": admin[0], "local": local})
    connection.execute(sa.text("UPDATE api_tokens SET revoked_at = :now WHERE user_id = :local AND revoked_at IS NULL"),
                       {"now": datetime.now(UTC), "local": local})


def downgrade():
    # Whose rows were whose before is not recorded; the local user simply becomes an admin again.
    op.get_bind().execute(sa.text("UPDATE users SET is_admin = :yes WHERE email = :local"),
                          {"yes": True, "local": LOCAL_EMAIL})
