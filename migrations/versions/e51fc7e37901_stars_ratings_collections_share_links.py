"""Stars, ratings 1-5 per person, collections (private or shared with the team) and expiring share links.

Revision ID: e51fc7e37901
Revises: 9f4b0f050b6c
Create Date: 2026-12-08 00:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "e51fc7e37901"
down_revision = "9f4b0f050b6c"
branch_labels = None
depends_on = None
UTC_TIME = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "stars",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("generation_id", sa.Integer(), sa.ForeignKey("generations.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_stars_generation_id", "stars", ["generation_id"])
    op.create_table(
        "ratings",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("generation_id", sa.Integer(), sa.ForeignKey("generations.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("image_created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.CheckConstraint("value BETWEEN 1 AND 5", name="ck_ratings_value"),
    )
    op.create_index("ix_ratings_generation_id_value", "ratings", ["generation_id", "value"])
    op.create_index("ix_ratings_user_value_image_created_at", "ratings",
                    ["user_id", "value", "image_created_at", "generation_id"])
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False, server_default="private"),
        sa.Column("cover_id", sa.Integer(), sa.ForeignKey("generations.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_collections_owner_id_name", "collections", ["owner_id", "name"])
    op.create_index("ix_collections_visibility", "collections", ["visibility"])
    op.create_table(
        "collection_images",
        sa.Column("collection_id", sa.Integer(), sa.ForeignKey("collections.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("generation_id", sa.Integer(), sa.ForeignKey("generations.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("added_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("added_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_collection_images_generation_id", "collection_images", ["generation_id"])
    op.create_table(
        "share_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("generation_id", sa.Integer(), sa.ForeignKey("generations.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("collection_id", sa.Integer(), sa.ForeignKey("collections.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("show_owner", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=True),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
        sa.CheckConstraint("(generation_id IS NULL) <> (collection_id IS NULL)", name="ck_share_links_one_target"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_share_links_owner_id_created_at", "share_links", ["owner_id", "created_at"])
    op.create_index("ix_share_links_generation_id", "share_links", ["generation_id"])
    op.create_index("ix_share_links_collection_id", "share_links", ["collection_id"])


def downgrade():
    op.drop_table("share_links")
    op.drop_table("collection_images")
    op.drop_table("collections")
    op.drop_table("ratings")
    op.drop_table("stars")
