-- Least-privilege roles for Procrastinate for .NET (tested by
-- tests/Procrastinate.ReliabilityTests/Security/LeastPrivilegeTests.cs; see RELIABILITY.md).
--
-- Run once per database, as a superuser or a role with CREATEROLE that may create schemas:
--   psql -d mydb -f docs/least-privilege.sql
-- It is idempotent. Set the passwords separately:
--   ALTER ROLE procrastinate_owner PASSWORD '...';  ALTER ROLE procrastinate_app PASSWORD '...';
--
--   procrastinate_owner  owns the schema "procrastinate" and everything in it; the only role that
--                        applies the schema (app.Schema.ApplyAsync(), `procrastinate schema --apply`)
--   procrastinate_app    the application (producers and workers): reads and writes rows, calls the
--                        functions, LISTENs; cannot create, alter or drop anything
--
-- Both connect with "Search Path=procrastinate" (Procrastinate never schema-qualifies its objects):
--   Host=...;Database=mydb;Username=procrastinate_app;Password=...;Search Path=procrastinate

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'procrastinate_owner') THEN
        CREATE ROLE procrastinate_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'procrastinate_app') THEN
        CREATE ROLE procrastinate_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- The schema belongs to the owner; nobody else may create objects in it.
CREATE SCHEMA IF NOT EXISTS procrastinate AUTHORIZATION procrastinate_owner;
REVOKE ALL ON SCHEMA procrastinate FROM PUBLIC;
GRANT USAGE ON SCHEMA procrastinate TO procrastinate_app;

-- Objects the owner creates from now on (the schema itself, later migrations) come with the
-- application's rights: rows, sequences, functions. No TRUNCATE, REFERENCES or TRIGGER.
ALTER DEFAULT PRIVILEGES FOR ROLE procrastinate_owner IN SCHEMA procrastinate
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO procrastinate_app;
ALTER DEFAULT PRIVILEGES FOR ROLE procrastinate_owner IN SCHEMA procrastinate
    GRANT USAGE, SELECT ON SEQUENCES TO procrastinate_app;
ALTER DEFAULT PRIVILEGES FOR ROLE procrastinate_owner IN SCHEMA procrastinate
    GRANT EXECUTE ON FUNCTIONS TO procrastinate_app;
ALTER DEFAULT PRIVILEGES FOR ROLE procrastinate_owner IN SCHEMA procrastinate
    REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Objects that already exist (a schema applied before this script ran).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA procrastinate TO procrastinate_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA procrastinate TO procrastinate_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA procrastinate TO procrastinate_app;
