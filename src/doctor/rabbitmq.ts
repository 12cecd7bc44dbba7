/**
 * The brokers (PULSE_URL and each TC_EXTRA_SOURCES connection): reachable,
 * the exchanges we bind exist, our queues exist with the arguments the
 * bridge declares (src/pulse/feed-topology.ts), and how full they are.
 *
 * AMQP tells a queue's arguments only by refusing a declaration that
 * differs (406 PRECONDITION_FAILED), so an existing queue is re-declared with
 * our arguments: equal arguments make that a no-op. (Were the queue deleted
 * between the passive check and that declaration, it would be created, as
 * the bridge would create it at start.) Every check that can fail on the
 * broker's side runs on a channel of its own, since a failed check closes it.
 */
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { type Config, type PulseFeed, pulseFeeds, redactUrl } from "../core/config.ts";
import { AMQP_SOCKET_OPTIONS } from "../pulse/amqp.ts";
import { feedBindings, feedQueueArguments, poisonQueueArguments } from "../pulse/feed-topology.ts";
import { type CheckResult, reason, result } from "./check.ts";

const NEEDED_BY = ["bridge", "replay"];
/** Depth (of x-max-length) from which a queue is worth a warning, and from which it is a failure. */
const WARN_FULL = 0.5;
const FAIL_FULL = 0.9;

async function onChannel<T>(connection: ChannelModel, use: (channel: Channel) => Promise<T>): Promise<T> {
  const channel = await connection.createChannel();
  channel.on("error", () => {});
  try {
    return await use(channel);
  } finally {
    await channel.close().catch(() => {});
  }
}

const code = (error: unknown) => (error as { code?: number }).code;

async function exchangesCheck(connection: ChannelModel, config: Config, feeds: PulseFeed[], name: string): Promise<CheckResult> {
  const exchanges = [...new Set(feeds.flatMap((feed) => feedBindings(feed, config).map((binding) => binding.exchange)))];
  const missing: string[] = [];
  for (const exchange of exchanges) {
    try {
      await onChannel(connection, (channel) => channel.checkExchange(exchange));
    } catch (error) {
      if (code(error) !== 404) throw error;
      missing.push(exchange);
    }
  }
  if (missing.length === 0) return result(`exchanges ${name}`, NEEDED_BY, "ok", `all ${exchanges.length} exist: ${exchanges.join(", ")}`);
  if (config.pulse.declareExchanges) {
    return result(
      `exchanges ${name}`,
      NEEDED_BY,
      "warn",
      `missing: ${missing.join(", ")} (the bridge declares them: PULSE_DECLARE_EXCHANGES)`,
      "development only; on Pulse, exchanges belong to their publishers",
    );
  }
  return result(
    `exchanges ${name}`,
    NEEDED_BY,
    "fail",
    `missing: ${missing.join(", ")}: their messages cannot reach our queues`,
    "check PULSE_EXCHANGE_PREFIX and the broker (exchanges belong to their publishers; a local broker: PULSE_DECLARE_EXCHANGES=true)",
  );
}

async function queueCheck(
  connection: ChannelModel,
  label: string,
  queue: string,
  args: Record<string, unknown>,
  limit: number,
  poison: boolean,
): Promise<CheckResult> {
  const check = `queue ${label}`;
  let depth: { messageCount: number; consumerCount: number };
  try {
    depth = await onChannel(connection, (channel) => channel.checkQueue(queue));
  } catch (error) {
    if (code(error) !== 404) throw error;
    return result(
      check,
      NEEDED_BY,
      "warn",
      `${queue} does not exist`,
      "the bridge declares it when it starts; if it ran before, the queue was deleted (Pulse deletes queues past their limit): messages published meanwhile are lost",
    );
  }
  const shown = Object.entries(args)
    .map(([key, value]) => `${key}=${value}`)
    .join(", ");
  try {
    await onChannel(connection, (channel) => channel.assertQueue(queue, { durable: true, arguments: args }));
  } catch (error) {
    if (code(error) !== 406) throw error;
    return result(
      check,
      NEEDED_BY,
      "fail",
      `${queue} exists with other arguments than the bridge declares (${shown}): the bridge cannot set it up`,
      "match PULSE_MAX_LENGTH / PULSE_DELIVERY_LIMIT / PULSE_POISON_MAX_LENGTH to the queue, or delete it once drained (the bridge declares it again)",
    );
  }
  const { messageCount: ready, consumerCount: consumers } = depth;
  const detail = `${queue}: ${ready} ready of ${limit}, ${consumers} consumer(s)`;
  if (poison) {
    return ready > 0
      ? result(check, NEEDED_BY, "warn", `${detail}: messages wait for an operator`, "pulse-bridge replay --poison")
      : result(check, NEEDED_BY, "ok", detail);
  }
  if (ready >= limit * FAIL_FULL) {
    return result(
      check,
      NEEDED_BY,
      "fail",
      `${detail}: nearly full (past x-max-length the oldest go to the poison queue, and Pulse deletes queues that grow past their limit)`,
      consumers ? "the bridge cannot keep up: is Redis refusing adds (bridge_paused)? run more bridges" : "start the bridge",
    );
  }
  if (ready >= limit * WARN_FULL) {
    return result(check, NEEDED_BY, "warn", `${detail}: more than half full`, consumers ? "check the bridge (bridge_paused, logs)" : "start the bridge");
  }
  return result(check, NEEDED_BY, "ok", detail);
}

async function connectionChecks(config: Config, name: string, url: string, feeds: PulseFeed[], timeoutMs: number): Promise<CheckResult[]> {
  const target = redactUrl(url);
  let connection: ChannelModel;
  try {
    connection = await amqp.connect(url, { ...AMQP_SOCKET_OPTIONS, timeout: timeoutMs });
  } catch (error) {
    return [
      result(
        `rabbitmq ${name}`,
        NEEDED_BY,
        "fail",
        `${target}: ${reason(error).replace(url, target)}`,
        "start the broker, or correct the URL and credentials (PULSE_URL, PULSE_USER, PULSE_PASSWORD, TC_EXTRA_SOURCES)",
      ),
    ];
  }
  connection.on("error", () => {});
  try {
    const checks = [result(`rabbitmq ${name}`, NEEDED_BY, "ok", target)];
    checks.push(await exchangesCheck(connection, config, feeds, name));
    for (const feed of feeds) {
      checks.push(
        await queueCheck(
          connection,
          feed.connection === "pulse" ? feed.kind : `${feed.kind}-${feed.connection}`,
          feed.queue,
          feedQueueArguments(feed, config),
          config.pulse.maxLength,
          false,
        ),
      );
    }
    const poison = feeds[0]!;
    checks.push(await queueCheck(connection, `poison ${name}`, poison.poisonQueue, poisonQueueArguments(config), config.pulse.poisonMaxLength, true));
    return checks;
  } finally {
    await connection.close().catch(() => {});
  }
}

export async function checkRabbitMq(config: Config, timeoutMs: number): Promise<CheckResult[]> {
  const byConnection = new Map<string, PulseFeed[]>();
  for (const feed of pulseFeeds(config)) byConnection.set(feed.connection, [...(byConnection.get(feed.connection) ?? []), feed]);
  const all = await Promise.all([...byConnection].map(([name, feeds]) => connectionChecks(config, name, feeds[0]!.url, feeds, timeoutMs)));
  return all.flat();
}
