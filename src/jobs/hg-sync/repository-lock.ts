/**
 * A per-repository lock in Redis, shared by every worker process on every
 * machine: syncs of one repository never overlap.
 *
 * Lifecycle: acquire() sets `<key> = <token>` with an expiry (SET NX PX); while
 * held, a timer renews the expiry every ttl/3, but only if the key still holds
 * our token; release() deletes the key only if it still holds our token
 * (compare-and-delete in Lua), so a holder whose lock expired can never
 * delete its successor's. If a renewal finds the lock gone, `lost` turns true
 * and `signal` aborts: the sync stops before its next write.
 *
 * Through Sentinel, replication is asynchronous: a lock set just before the
 * master dies may be missing on the replica promoted in its place, and a
 * second worker could take it there. With `replicas` (REDIS_DURABILITY=
 * replicas:N) acquire() WAITs until N replicas have the lock and counts it
 * as taken otherwise, so a promoted replica always knows the holder.
 */
import { randomBytes } from "node:crypto";
import type { RedisClient } from "../../core/redis.ts";

const RENEW = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

export class RepositoryLock {
  readonly token = randomBytes(16).toString("hex");
  private timer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();

  private constructor(
    private readonly redis: RedisClient,
    readonly key: string,
    private readonly ttlMs: number,
  ) {}

  /** The lock, or undefined when someone else holds it (or, with `replicas`, too few replicas confirmed it). */
  static async acquire(redis: RedisClient, key: string, ttlMs: number, replicas?: { count: number; timeoutMs: number }): Promise<RepositoryLock | undefined> {
    const lock = new RepositoryLock(redis, key, ttlMs);
    const ok = await redis.set(key, lock.token, "PX", ttlMs, "NX");
    if (ok !== "OK") return undefined;
    if (replicas && (await redis.wait(replicas.count, replicas.timeoutMs)) < replicas.count) {
      await redis.eval(RELEASE, 1, key, lock.token).catch(() => {});
      return undefined;
    }
    lock.timer = setInterval(() => void lock.renew(), Math.max(100, Math.floor(ttlMs / 3)));
    lock.timer.unref();
    return lock;
  }

  get lost(): boolean {
    return this.abort.signal.aborted;
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Throws when the lock was lost: call before each write. */
  assertHeld(): void {
    if (this.lost) throw new Error(`sync lock ${this.key} was lost (expired while held); the job will be retried`);
  }

  private async renew(): Promise<void> {
    try {
      const renewed = await this.redis.eval(RENEW, 1, this.key, this.token, String(this.ttlMs));
      if (renewed !== 1) this.markLost();
    } catch {
      // Redis unreachable: keep trying until the TTL would have passed; the
      // next successful renewal tells whether we still own it.
    }
  }

  private markLost(): void {
    if (this.timer) clearInterval(this.timer);
    this.abort.abort(new Error("sync lock lost"));
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.redis.eval(RELEASE, 1, this.key, this.token);
  }
}
