/**
 * Bridge throughput (README, "Figures"): M task-completed messages are published to
 * a local Pulse queue, then drained, in one run, by
 *   1. raw amqplib: consume + ack, nothing else (the ceiling),
 *   2. a naive bridge: prefetch 1, parse, await queue.add, ack, one at a time,
 *   3. pulse-bridge itself (startBridge, the code `pulse-bridge bridge` runs),
 * each timed from opening its connection until the M-th message is done, and,
 * every round, for context:
 *   4. the same M jobs added to BullMQ straight from Node, no AMQP at all
 *      (what the job store alone costs: BullMQ's add is a Lua script per job).
 * Target: pulse-bridge / raw ≥ 0.8.
 *
 * Fair by construction: raw and pulse-bridge alternate (rounds, medians
 * reported, and the median of each round's own ratio); every bridge round
 * adds jobs that are new to Redis (a fresh BullMQ prefix per round: the same
 * ids again would only take BullMQ's cheaper "duplicate" path); raw and naive
 * open their connection with the socket options the bridge uses (TCP_NODELAY),
 * so the ratio is about the bridge's work, not a socket setting. Each phase
 * also reports the CPU time of this process, Redis and RabbitMQ, and how busy
 * the machine's cores were: on a small machine the three share the cores.
 *
 *   npm run bench:bridge [-- --messages 20000 --prefetch 200 --rounds 5]
 *   npm run bench:bridge -- --durability memory|fsync|replicas:1   (or BENCH_DURABILITY)
 *   npm run bench:bridge -- --no-naive      (skips the naive bridge: ~17 s a run)
 *
 * The bridge's own Node CPU is also set against its floor: what consuming
 * alone (raw's Node CPU) and adding the same jobs alone (BullMQ's Node CPU)
 * cost, medians of the rounds ("floor" line; the issue's target: within 10 %).
 *
 * Uses the machine's RabbitMQ and Redis under names of its own, removed at the end.
 * With --durability, every phase uses a Redis of its own instead, set up for that
 * REDIS_DURABILITY (memory: no persistence; fsync: AOF with appendfsync always in a
 * temporary folder; replicas:N: a master and N replicas), so the modes compare
 * like with like; "BullMQ adds alone" stays plain adds (no WAIT).
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import amqp from "amqplib";
import { Queue } from "bullmq";
import { startBridge } from "../src/bridge/bridge.ts";
import { coalesceWrites } from "../src/bridge/write-coalescer.ts";
import { addJob, closeQueues, openQueues } from "../src/contract/queues.ts";
import { type Config, loadConfig, pulseFeeds } from "../src/core/config.ts";
import { createLogger } from "../src/core/log.ts";
import { messagesEnqueued } from "../src/core/metrics.ts";
import { createRedis } from "../src/core/redis.ts";
import { AMQP_SOCKET_OPTIONS } from "../src/pulse/amqp.ts";
import { feedQueueArguments } from "../src/pulse/feed-topology.ts";
import { routeMessage } from "../src/routing/route-message.ts";
import { type PrivateRedis, startPrivateRedis } from "../test/support/private-redis.ts";
import { declareExchanges, openPublisher, type Publisher, taskCompletedMessage } from "../test/support/pulse.ts";
import { deletePulseObjects, deleteRedisKeys, SERVICES } from "../test/support/test-environment.ts";
import { waitFor } from "../test/support/wait-for.ts";

const { values: args } = parseArgs({
  options: {
    messages: { type: "string", default: process.env.BENCH_MESSAGES ?? "20000" },
    prefetch: { type: "string", default: "200" },
    // raw and pulse-bridge alternate this many times (medians reported): the
    // services share the machine's cores with whatever else runs.
    rounds: { type: "string", default: "5" },
    // Profiling aid: run one phase only (raw, naive, bridge or adds).
    only: { type: "string" },
    // --no-naive: leave out the naive bridge (slow, and only context).
    naive: { type: "boolean", default: true },
    // REDIS_DURABILITY of the bridge, on private redis-server processes set up for it.
    durability: { type: "string", default: process.env.BENCH_DURABILITY },
  },
  allowNegative: true,
});

/** Private Redis servers for --durability: the master the bench uses, and what to remove at the end. */
async function redisFor(durability: string): Promise<{ url: string; servers: PrivateRedis[]; dataDir?: string }> {
  const match = /^(memory|fsync|replicas:(\d+))$/.exec(durability);
  if (!match) throw new Error("--durability must be memory, fsync or replicas:N");
  if (durability === "fsync") {
    const dataDir = await mkdtemp(path.join(tmpdir(), "pb-bench-redis-"));
    const server = await startPrivateRedis({ dataDir, appendfsync: "always" });
    return { url: server.url, servers: [server], dataDir };
  }
  const master = await startPrivateRedis();
  const servers = [master];
  const replicas = Number(match[2] ?? 0);
  for (let i = 0; i < replicas; i++) servers.push(await startPrivateRedis({ replicaOf: master.port }));
  const probe = createRedis(master.url, "producer");
  await waitFor(`${replicas} replicas online`, async () => ((await probe.info("replication")).match(/state=online/g)?.length ?? 0) >= replicas);
  probe.disconnect();
  return { url: master.url, servers };
}
const privateRedis = args.durability ? await redisFor(args.durability) : undefined;
const M = Number(args.messages);
const id = `bench-bridge-${randomBytes(3).toString("hex")}`;
const env = {
  PULSE_URL: SERVICES.amqp,
  PULSE_QUEUE: id,
  PULSE_EXCHANGE_PREFIX: `${id}/`,
  PULSE_DECLARE_EXCHANGES: "true",
  PULSE_PREFETCH: args.prefetch,
  REDIS_URL: privateRedis?.url ?? SERVICES.redis,
  REDIS_DURABILITY: args.durability ?? "memory",
  LOG_LEVEL: "silent",
};
let configs = 0;
/** A config whose BullMQ prefix is new (`<id>-<phase>-<n>`): jobs added under it are new to Redis. */
const configFor = (phase: string): Config => loadConfig({ ...env, BULLMQ_PREFIX: `${id}-${phase}-${configs++}` });
const base = configFor("setup");
const tcFeed = pulseFeeds(base).find((feed) => feed.kind === "taskcluster")!;

async function fill(publisher: Publisher): Promise<void> {
  const messages = Array.from({ length: M }, (_, i) => taskCompletedMessage(i, base));
  await publisher.publishMany(messages.map((m) => ({ exchange: m.exchange, routingKey: m.routingKey, body: m.body, options: m.options })));
}

/** Declares the queue as the bridge does, so the messages can be published before any consumer runs. */
async function declareQueue(): Promise<void> {
  const connection = await amqp.connect(SERVICES.amqp);
  const channel = await connection.createChannel();
  await channel.assertExchange(tcFeed.poisonExchange, "topic", { durable: true });
  await channel.assertQueue(tcFeed.queue, { durable: true, arguments: feedQueueArguments(tcFeed, base) });
  for (const exchange of [base.pulse.exchanges.taskCompleted, base.pulse.exchanges.taskFailed]) {
    await channel.bindQueue(tcFeed.queue, exchange, `route.${base.pulse.tcRoute}`);
  }
  await connection.close();
}

async function raw(): Promise<number> {
  const started = performance.now();
  const connection = await amqp.connect(SERVICES.amqp, AMQP_SOCKET_OPTIONS);
  const channel = await connection.createChannel();
  await channel.prefetch(base.pulse.prefetch);
  let count = 0;
  await new Promise<void>((resolve) => {
    void channel.consume(tcFeed.queue, (message) => {
      channel.ack(message!);
      if (++count === M) resolve();
    });
  });
  const elapsed = performance.now() - started;
  // The channel first: a connection close can overtake the last acks, and the
  // broker would hand those messages to the next phase (the bridge) again.
  await channel.close();
  await connection.close();
  return elapsed;
}

async function naive(): Promise<number> {
  const config = configFor("naive");
  const started = performance.now();
  const redis = createRedis(config.redis.url, "producer");
  const queue = new Queue("tc-ingest", { connection: redis, prefix: config.redis.prefix });
  const connection = await amqp.connect(SERVICES.amqp, AMQP_SOCKET_OPTIONS);
  const channel = await connection.createChannel();
  await channel.prefetch(1);
  let count = 0;
  await new Promise<void>((resolve, reject) => {
    void channel.consume(tcFeed.queue, (message) => {
      const decision = routeMessage(
        {
          feed: tcFeed,
          exchange: message!.fields.exchange,
          routingKey: message!.fields.routingKey,
          content: message!.content,
          headers: message!.properties.headers ?? {},
          redelivered: false,
        },
        config,
      );
      if (decision.action !== "enqueue") return reject(new Error(`unexpected ${decision.action}`));
      queue.add(decision.job.name, decision.job.data as never, decision.job.opts).then(() => {
        channel.ack(message!);
        if (++count === M) resolve();
      }, reject);
    });
  });
  const elapsed = performance.now() - started;
  await connection.close();
  await queue.close();
  redis.disconnect();
  return elapsed;
}

/** The jobs pulse-bridge would make of the M messages, built before timing starts. */
function jobsOfMessages(config: Config) {
  return Array.from({ length: M }, (_, i) => {
    const m = taskCompletedMessage(i, config);
    const decision = routeMessage(
      {
        feed: tcFeed,
        exchange: m.exchange,
        routingKey: m.routingKey,
        content: Buffer.from(JSON.stringify(m.body)),
        headers: m.options.headers ?? {},
        redelivered: false,
      },
      config,
    );
    if (decision.action !== "enqueue") throw new Error(`unexpected ${decision.action}`);
    return decision.job;
  });
}

/**
 * BullMQ alone: the same adds, `prefetch` of them in flight, written as the
 * bridge writes them (coalesced), through the queues the bridge opens
 * (openQueues: the same default job options and add path), no AMQP. The jobs
 * are built first, outside the timing: the returned phase only adds them.
 */
function addsOnly(): () => Promise<number> {
  const config = configFor("adds");
  const jobs = jobsOfMessages(config);
  return () => addJobs(config, jobs);
}

async function addJobs(config: Config, jobs: ReturnType<typeof jobsOfMessages>): Promise<number> {
  const redis = createRedis(config.redis.url, "producer");
  const queues = openQueues(redis, config.redis.prefix);
  const coalesce = coalesceWrites(redis);
  const started = performance.now();
  let next = 0;
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    const fillWindow = () => {
      while (next < M && next - done < config.pulse.prefetch) {
        const job = jobs[next++]!;
        coalesce();
        addJob(queues, job).then(() => {
          if (++done === M) resolve();
          else fillWindow();
        }, reject);
      }
    };
    fillWindow();
  });
  const elapsed = performance.now() - started;
  await closeQueues(queues);
  redis.disconnect();
  return elapsed;
}

async function enqueuedSoFar(): Promise<number> {
  return (await messagesEnqueued.get()).values.reduce((sum, v) => sum + v.value, 0);
}

async function pulseBridge(): Promise<number> {
  const config = configFor("bridge");
  const before = await enqueuedSoFar();
  const started = performance.now();
  const bridge = await startBridge({ config, log: createLogger("silent", "bench") });
  // Polled on a short timer: costs the bridge a little, never helps it. The
  // counters are read only once nothing is unacked (rare until the end), so
  // the poll costs the bridge's CPU figure next to nothing.
  await new Promise<void>((resolve) => {
    const timer = setInterval(async () => {
      const feed = bridge.status().feeds.find((f) => f.queue === tcFeed.queue);
      if (feed?.unacked === 0 && (await enqueuedSoFar()) - before >= M) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
  const elapsed = performance.now() - started;
  await bridge.close();
  return elapsed;
}

const rate = (ms: number) => Math.round((M / ms) * 1000);

/**
 * CPU time (ms) spent so far by the local services' processes, from /proc
 * (Linux; empty elsewhere). On a small machine the three processes share the
 * cores, so this explains a ratio better than wall time alone.
 */
function serviceCpuMs(): Record<"redis" | "rabbitmq", number> {
  const totals = { redis: 0, rabbitmq: 0 };
  try {
    for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, at USER_HZ 100
        if (name === "redis-server") totals.redis += ms;
        else if (name === "beam.smp") totals.rabbitmq += ms;
      } catch {
        // the process ended meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return totals;
}

/** Busy and total jiffies of all cores, from /proc/stat (zeros elsewhere). */
function machineJiffies(): { busy: number; total: number } {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, v) => sum + v, 0);
    return { busy: total - fields[3]! - fields[4]!, total }; // minus idle and iowait
  } catch {
    return { busy: 0, total: 0 };
  }
}

interface PhaseRun {
  ms: number;
  cpuMs: number;
  redisCpuMs: number;
  rabbitCpuMs: number;
  /** Share of all cores' time spent busy during the phase, in %. */
  machineBusy: number;
}

/** Runs a phase; returns its wall time and the CPU time this process and the services spent on it. */
async function timed(phase: () => Promise<number>): Promise<PhaseRun> {
  // BENCH_CPU_PROFILE=<file>: a V8 CPU profile of the phase alone (not of the publishing).
  const profiler = process.env.BENCH_CPU_PROFILE ? new Session() : undefined;
  if (profiler) {
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.start");
  }
  const cpu = process.cpuUsage();
  const services = serviceCpuMs();
  const machine = machineJiffies();
  const ms = await phase();
  const used = process.cpuUsage(cpu);
  const after = serviceCpuMs();
  const machineAfter = machineJiffies();
  const machineBusy = Math.round((100 * (machineAfter.busy - machine.busy)) / Math.max(1, machineAfter.total - machine.total));
  if (profiler) {
    const { profile } = await profiler.post("Profiler.stop");
    writeFileSync(process.env.BENCH_CPU_PROFILE!, JSON.stringify(profile));
    profiler.disconnect();
  }
  return {
    ms,
    cpuMs: Math.round((used.user + used.system) / 1000),
    redisCpuMs: Math.round(after.redis - services.redis),
    rabbitCpuMs: Math.round(after.rabbitmq - services.rabbitmq),
    machineBusy,
  };
}

function line(label: string, run: PhaseRun, rawMs?: number): string {
  const ratio = rawMs === undefined ? "" : `  ratio ${(rawMs / run.ms).toFixed(2)}`;
  const cpu = run.cpuMs + run.redisCpuMs + run.rabbitCpuMs;
  return `  ${label.padEnd(27)}${rate(run.ms).toString().padStart(7)} msg/s  (${Math.round(run.ms)} ms; CPU ms: node ${run.cpuMs}, redis ${run.redisCpuMs}, rabbitmq ${run.rabbitCpuMs}, sum ${cpu}; cores ${run.machineBusy}% busy)${ratio}`;
}

async function main(): Promise<void> {
  const publisher = await openPublisher();
  await declareExchanges(publisher, base);
  await declareQueue();
  try {
    console.log(
      `bridge benchmark: ${M} task-completed messages, prefetch ${base.pulse.prefetch}, REDIS_DURABILITY ${env.REDIS_DURABILITY}${privateRedis ? " (private Redis)" : ""}, Node ${process.version}, ${availableParallelism()} cores, load ${loadavg()[0]!.toFixed(2)}`,
    );
    // Each entry readies its phase (messages in the queue, or jobs built) and returns it.
    const phases: Record<string, () => Promise<() => Promise<number>>> = {
      raw: async () => {
        await fill(publisher);
        return raw;
      },
      naive: async () => {
        await fill(publisher);
        return naive;
      },
      bridge: async () => {
        await fill(publisher);
        return pulseBridge;
      },
      adds: async () => addsOnly(),
    };
    if (args.only) {
      const ready = phases[args.only];
      if (!ready) throw new Error(`--only must be one of ${Object.keys(phases).join(", ")}`);
      console.log(line(args.only, await timed(await ready())));
      return;
    }
    const rawRuns: PhaseRun[] = [];
    const bridgeRuns: PhaseRun[] = [];
    let naiveRun: PhaseRun | undefined;
    const addsRuns: PhaseRun[] = [];
    for (let round = 1; round <= Number(args.rounds); round++) {
      await fill(publisher);
      rawRuns.push(await timed(raw));
      console.log(line(`raw amqplib consume+ack`, rawRuns.at(-1)!));
      if (!naiveRun && args.naive) {
        await fill(publisher);
        naiveRun = await timed(naive);
        console.log(line("naive bridge (1 at once)", naiveRun, rawRuns.at(-1)!.ms));
      }
      addsRuns.push(await timed(addsOnly()));
      console.log(line("BullMQ adds alone, no AMQP", addsRuns.at(-1)!));
      await fill(publisher);
      bridgeRuns.push(await timed(pulseBridge));
      console.log(line("pulse-bridge", bridgeRuns.at(-1)!, rawRuns.at(-1)!.ms));
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const rawMs = median(rawRuns.map((r) => r.ms));
    const bridgeMs = median(bridgeRuns.map((r) => r.ms));
    const naiveMs = naiveRun?.ms ?? Number.NaN;
    const ratio = rawMs / bridgeMs;
    const roundRatio = median(rawRuns.map((r, i) => r.ms / bridgeRuns[i]!.ms));
    const cpuOf = (runs: PhaseRun[], key: "cpuMs" | "redisCpuMs" | "rabbitCpuMs") => median(runs.map((r) => r[key]));
    console.log(
      `medians of ${rawRuns.length}: raw ${rate(rawMs)} msg/s, ${naiveRun ? `naive ${rate(naiveMs)} msg/s (ratio ${(rawMs / naiveMs).toFixed(2)})` : "naive not run"}, BullMQ adds alone ${rate(median(addsRuns.map((r) => r.ms)))} jobs/s, pulse-bridge ${rate(bridgeMs)} msg/s`,
    );
    console.log(
      `pulse-bridge CPU per message (medians): node ${((cpuOf(bridgeRuns, "cpuMs") * 1000) / M).toFixed(1)} µs, redis ${((cpuOf(bridgeRuns, "redisCpuMs") * 1000) / M).toFixed(1)} µs, rabbitmq ${((cpuOf(bridgeRuns, "rabbitCpuMs") * 1000) / M).toFixed(1)} µs; raw: node ${((cpuOf(rawRuns, "cpuMs") * 1000) / M).toFixed(1)} µs, rabbitmq ${((cpuOf(rawRuns, "rabbitCpuMs") * 1000) / M).toFixed(1)} µs`,
    );
    // What no bridge could beat here: consuming (raw's Node time), adding the
    // jobs (BullMQ alone, Node + Redis) and the broker's delivering (its CPU in
    // the bridge rounds), with no overhead of its own and every core busy.
    const cores = availableParallelism();
    const addsCpuMs = median(addsRuns.map((r) => r.cpuMs + r.redisCpuMs));
    const floorMs = (cpuOf(rawRuns, "cpuMs") + addsCpuMs + cpuOf(bridgeRuns, "rabbitCpuMs")) / cores;
    const ceiling = rawMs / floorMs;
    console.log(
      `ceiling on this machine: consume ${cpuOf(rawRuns, "cpuMs")} + BullMQ adds ${addsCpuMs} + broker ${cpuOf(bridgeRuns, "rabbitCpuMs")} CPU ms over ${cores} cores >= ${Math.round(floorMs)} ms, so pulse-bridge / raw <= ${ceiling.toFixed(2)} for any bridge with no overhead of its own and every core busy`,
    );
    // The bridge's own overhead: its Node CPU against consuming alone plus
    // adding alone (each the median of its rounds).
    const floorNodeMs = cpuOf(rawRuns, "cpuMs") + cpuOf(addsRuns, "cpuMs");
    const overFloor = cpuOf(bridgeRuns, "cpuMs") / floorNodeMs;
    // The same per round (its three phases ran back to back, so under the same load), then the median.
    const roundOverFloor = median(bridgeRuns.map((r, i) => r.cpuMs / (rawRuns[i]!.cpuMs + addsRuns[i]!.cpuMs)));
    console.log(
      `pulse-bridge Node CPU ${cpuOf(bridgeRuns, "cpuMs")} ms against its floor: consume ${cpuOf(rawRuns, "cpuMs")} + BullMQ adds ${cpuOf(addsRuns, "cpuMs")} = ${floorNodeMs} ms, ratio ${overFloor.toFixed(2)} (median of the rounds' own ratios ${roundOverFloor.toFixed(2)}; target <= 1.10: ${overFloor <= 1.1 ? "met" : "MISSED"})`,
    );
    console.log(
      `pulse-bridge / raw = ${ratio.toFixed(2)} (median of the rounds' own ratios ${roundRatio.toFixed(2)}; target >= 0.8: ${ratio >= 0.8 ? "met" : "MISSED"})`,
    );
    console.log(
      JSON.stringify({
        messages: M,
        prefetch: base.pulse.prefetch,
        durability: env.REDIS_DURABILITY,
        rounds: rawRuns.length,
        rawMsgPerSec: rate(rawMs),
        naiveMsgPerSec: naiveRun ? rate(naiveMs) : null,
        bridgeMsgPerSec: rate(bridgeMs),
        addsAloneMsgPerSec: rate(median(addsRuns.map((r) => r.ms))),
        ratio: Number(ratio.toFixed(3)),
        ceiling: Number(ceiling.toFixed(3)),
        roundRatio: Number(roundRatio.toFixed(3)),
        naiveRatio: naiveRun ? Number((rawMs / naiveMs).toFixed(3)) : null,
        nodeCpuOverFloor: Number(overFloor.toFixed(3)),
        roundNodeCpuOverFloor: Number(roundOverFloor.toFixed(3)),
        bridgeCpuMs: { node: cpuOf(bridgeRuns, "cpuMs"), redis: cpuOf(bridgeRuns, "redisCpuMs"), rabbitmq: cpuOf(bridgeRuns, "rabbitCpuMs") },
        rawCpuMs: { node: cpuOf(rawRuns, "cpuMs"), rabbitmq: cpuOf(rawRuns, "rabbitCpuMs") },
        addsAloneCpuMs: { node: cpuOf(addsRuns, "cpuMs"), redis: cpuOf(addsRuns, "redisCpuMs") },
        loadAfter: Number(loadavg()[0]!.toFixed(2)),
      }),
    );
  } finally {
    await publisher.close();
    await deletePulseObjects(base);
    await deleteRedisKeys(`${id}-*`, privateRedis?.url);
    for (const server of privateRedis?.servers ?? []) await server.kill();
    if (privateRedis?.dataDir) await rm(privateRedis.dataDir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
