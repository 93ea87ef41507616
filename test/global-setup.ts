import pg from 'pg';

/**
 * The storage and integration suites run against SQLite and PostgreSQL. PostgreSQL comes from
 * APPLINKS_TEST_DATABASE_URL (`.ci/run` starts a server and sets it). Fail early and clearly
 * when it is missing rather than silently testing one dialect.
 */
export default async function setup(): Promise<void> {
  const url = process.env.APPLINKS_TEST_DATABASE_URL;
  if (!url) {
    throw new Error(
      'APPLINKS_TEST_DATABASE_URL is not set. The tests need a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test ; `bash .ci/run` installs and starts one.',
    );
  }
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    await client.query('select 1');
  } catch (error) {
    throw new Error(`cannot reach PostgreSQL at APPLINKS_TEST_DATABASE_URL: ${(error as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
