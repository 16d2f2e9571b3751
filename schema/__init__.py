"""The database: migrations, named queries, the connection pool, reference data."""
