"""The store on PostgreSQL (`RESPONDER_DATABASE_URL`): psycopg 3, a pool, versioned migrations."""
