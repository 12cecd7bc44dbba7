/** The one way to open the database: Prisma 7's client over node-postgres. */
import { PrismaPg } from "@prisma/adapter-pg";
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
