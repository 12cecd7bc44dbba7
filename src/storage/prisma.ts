/** The one way to open the database: Prisma 7's client over node-postgres. */
import { PrismaPg } from "@prisma/adapter-pg";
import { inSpan } from "../core/tracing.ts";
import { type Prisma, PrismaClient } from "../generated/prisma/client.ts";

export type Database = PrismaClient;
/** What an interactive `db.$transaction(async (tx) => …)` hands its callback: the client without `$transaction`, `$connect` and the like. */
export type Transaction = Prisma.TransactionClient;
export { Prisma } from "../generated/prisma/client.ts";
export type { RepositoryKind } from "../generated/prisma/enums.ts";

/**
 * A client over a pool of at most `database.poolSize` connections
 * (DATABASE_POOL_SIZE); `atMost` lowers it for short commands that need fewer.
 *
 * Works behind PgBouncer in transaction mode: the adapter sends unnamed
 * statements (it names one only when given a `statementNameGenerator`, which
 * we never pass), an interactive transaction keeps one server connection from
 * BEGIN to COMMIT, and nothing here uses session state (no SET, advisory
 * locks, LISTEN or temporary tables). Migrations are the exception: migrate()
 * needs a direct connection.
 */
export function openDatabase(database: { url: string; poolSize: number }, options: { atMost?: number } = {}): Database {
  const max = Math.min(database.poolSize, options.atMost ?? database.poolSize);
  const adapter = new PrismaPg({ connectionString: database.url, max });
  return new PrismaClient({ adapter });
}

const TRANSACTION_SPAN = { "db.system.name": "postgresql", "db.operation.name": "transaction" };

/** `db.$transaction(fn, options)`, in a span `db transaction <name>` when traces are on. */
export function transaction<T>(db: Database, name: string, fn: (tx: Transaction) => Promise<T>, options?: { maxWait?: number; timeout?: number }): Promise<T> {
  return inSpan(`db transaction ${name}`, TRANSACTION_SPAN, () => db.$transaction(fn, options), "client");
}
