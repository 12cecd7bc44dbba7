/** The one way to open the database: Prisma 7's client over node-postgres. */
import { PrismaPg } from "@prisma/adapter-pg";
import { inSpan } from "../core/tracing.ts";
import { type Prisma, PrismaClient } from "../generated/prisma/client.ts";

export type Database = PrismaClient;
/** What an interactive `db.$transaction(async (tx) => …)` hands its callback: the client without `$transaction`, `$connect` and the like. */
export type Transaction = Prisma.TransactionClient;
export { Prisma } from "../generated/prisma/client.ts";
export type { RepositoryKind } from "../generated/prisma/enums.ts";

export function openDatabase(databaseUrl: string, options: { max?: number } = {}): Database {
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: options.max ?? 10 });
  return new PrismaClient({ adapter });
}

const TRANSACTION_SPAN = { "db.system.name": "postgresql", "db.operation.name": "transaction" };

/** `db.$transaction(fn, options)`, in a span `db transaction <name>` when traces are on. */
export function transaction<T>(db: Database, name: string, fn: (tx: Transaction) => Promise<T>, options?: { maxWait?: number; timeout?: number }): Promise<T> {
  return inSpan(`db transaction ${name}`, TRANSACTION_SPAN, () => db.$transaction(fn, options), "client");
}
