-- Run once on a fresh PostgreSQL data directory. docker-compose.yml creates the
-- masterclass role and database through POSTGRES_USER/POSTGRES_DB (which makes the
-- role a superuser); scripts/stack does the same here so both stacks match.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'masterclass') THEN
    CREATE ROLE masterclass LOGIN SUPERUSER PASSWORD 'masterclass';
  END IF;
END
$$;
SELECT 'CREATE DATABASE masterclass OWNER masterclass'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'masterclass')\gexec
