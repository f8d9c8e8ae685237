"""Search at size: keep chunk vectors inline in the heap row, next to the primary key.

pgvector's `vector` type defaults to EXTERNAL storage, so a chunk row (content, tsv, metadata
and a 1.5 kB vector: ~3 kB) had its vector moved out of line: an exact scan of one cabinet
read the TOAST table once per chunk (~12 µs a row). MAIN keeps the vector in the row and
lets Postgres move the text columns out instead (those are read only for the few chunks a
search returns). Only rows written after this migration get the new layout; the per-cabinet
ANN indexes (`indexing/ann.py`) are created at run time, concurrently, not here.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE rag_chunks ALTER COLUMN embedding SET STORAGE MAIN")


def downgrade() -> None:
    op.execute(
        "DO $$ DECLARE r record; BEGIN FOR r IN SELECT c.relname FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'rag_chunks'::regclass AND starts_with(c.relname, 'rag_chunks_ann_') "
        "LOOP EXECUTE format('DROP INDEX %I', r.relname); END LOOP; END $$"
    )
    op.execute("ALTER TABLE rag_chunks ALTER COLUMN embedding SET STORAGE EXTERNAL")
