"""Database adapter: SQLAlchemy models, engine, repositories, migrations."""
