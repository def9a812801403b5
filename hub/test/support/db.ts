import { createTestDatabase, type TestDatabase } from "@datalab/shared/testing";

/**
 * createTestDatabase() with an 'error' listener on its pool. pg-pool's end() resolves before
 * its clients have closed, so drop()'s DROP DATABASE ... WITH (FORCE) can reach a closing
 * client; without a listener the pool re-emits that 57P01 as an uncaught exception.
 */
export async function testDatabase(baseUrl?: string): Promise<TestDatabase> {
  const db = await createTestDatabase(baseUrl);
  db.pool.on("error", () => undefined);
  return db;
}

export async function count(db: TestDatabase, sql = "SELECT count(*) AS n FROM readings"): Promise<number> {
  return Number((await db.pool.query<{ n: string }>(sql)).rows[0]!.n);
}
