/**
 * The dashboard (`pulse-bridge dashboard`, and part of `start`): one Express
 * app on DASHBOARD_HOST:DASHBOARD_PORT serving
 *   /queues          Bull Board (see bull-board.ts for the access policy)
 *   /healthz         the process is up
 *   /readyz          Redis, PostgreSQL and the broker(s) answer; 503 names the failing ones
 *   /metrics         Prometheus: src/core/metrics.ts plus queue depths read at scrape time
 *   /artifacts/:id   detail artifacts of comparisons (tc-ingest's router)
 *   /api/...         read-only JSON API (read-api.ts)
 * Health, metrics, artifacts and the API are open: they hold no secrets and
 * change nothing. Every answer carries helmet's security headers; the
 * Content-Security-Policy is strict (nothing may load) except under /queues,
 * where Bull Board's page needs its own scripts and styles, inline styles
 * (its loading screen) and Google Fonts.
 */

import { createServer } from "node:http";
import express from "express";
import helmet from "helmet";
import { Registry } from "prom-client";
import { closeQueues, openQueues } from "../contract/queues.ts";
import { type Config, pulseFeeds } from "../core/config.ts";
import { type ListeningServer, listen } from "../core/http-server.ts";
import type { Lifecycle } from "../core/lifecycle.ts";
import type { Logger } from "../core/log.ts";
import { registry } from "../core/metrics.ts";
import { createRedis } from "../core/redis.ts";
import { type Database, openDatabase } from "../storage/prisma.ts";
import type { VcsBackend, VcsKind } from "../vcs/backend.ts";
import { artifactLinkRouter } from "./artifact-link.ts";
import { BrokerProbe } from "./broker-probe.ts";
import { BOARD_PATH, bullBoardRouter } from "./bull-board.ts";
import { registerQueueDepthMetrics } from "./queue-depth-metrics.ts";
import { readApiRouter } from "./read-api.ts";
import { checkReadiness } from "./readiness.ts";
import { redactText } from "./redact-secrets.ts";

export interface DashboardOptions {
  config: Config;
  log: Logger;
  lifecycle: Lifecycle;
  /** Share a database client with other roles of the same process (start). */
  db?: Database;
  /** Diff back ends per repository kind (the hg-sync ones). */
  backends?: Partial<Record<VcsKind, VcsBackend>>;
}

/** Its url is e.g. http://127.0.0.1:3000 (the real port when DASHBOARD_PORT=0). */
export type DashboardHandle = ListeningServer;

function securityHeaders(): express.RequestHandler {
  const strict = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { "default-src": ["'none'"], "base-uri": ["'none'"], "form-action": ["'none'"], "frame-ancestors": ["'none'"] },
    },
  });
  const board = helmet({
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        // The dashboard is usually plain http (127.0.0.1): upgrading its requests would break the board.
        "upgrade-insecure-requests": null,
        "frame-ancestors": ["'none'"],
        "style-src": ["'self'", "'unsafe-inline'", "https://fonts.googleapis.com"],
        "font-src": ["'self'", "data:", "https://fonts.gstatic.com"],
      },
    },
  });
  return (request, response, next) => (request.path === BOARD_PATH || request.path.startsWith(`${BOARD_PATH}/`) ? board : strict)(request, response, next);
}

export async function startDashboard(options: DashboardOptions): Promise<DashboardHandle> {
  const { config, lifecycle } = options;
  const log = options.log.child({ component: "dashboard" });

  const redis = createRedis(config.redis, "producer");
  redis.on("error", (error) => log.debug({ err: error.message }, "redis connection error"));
  const db = options.db ?? openDatabase(config.database, { atMost: 5 });
  const queues = openQueues(redis, config.redis.prefix);
  for (const queue of Object.values(queues)) queue.on("error", (error) => log.debug({ err: error.message }, "queue error"));
  const feeds = pulseFeeds(config);
  const brokers = new Map<string, BrokerProbe>();
  for (const feed of feeds) if (!brokers.has(feed.connection)) brokers.set(feed.connection, new BrokerProbe(feed.url));

  // Our gauges live in a registry of their own, merged at scrape time, so a
  // second dashboard in one process (tests) does not clash on names.
  const depthRegistry = new Registry();
  registerQueueDepthMetrics(depthRegistry, { config, queues, feeds, brokers, log });

  const app = express();
  app.disable("x-powered-by");
  app.use(securityHeaders());
  app.get("/", (_request, response) => response.redirect(BOARD_PATH));
  app.get("/healthz", (_request, response) => {
    response.json({ status: "ok" });
  });
  app.get("/readyz", async (_request, response) => {
    const report = await checkReadiness({ redis, db, brokers });
    if (!report.ready) log.warn({ checks: report.checks }, "not ready");
    response.status(report.ready ? 200 : 503).json(report);
  });
  app.get("/metrics", async (_request, response) => {
    try {
      const merged = Registry.merge([registry, depthRegistry]);
      response.setHeader("Content-Type", merged.contentType);
      response.send(await merged.metrics());
    } catch (error) {
      log.error({ err: error }, "metrics failed");
      response.status(500).send("metrics failed\n");
    }
  });
  app.use(
    BOARD_PATH,
    bullBoardRouter(queues, {
      credentials: config.dashboard.user && config.dashboard.password ? { user: config.dashboard.user, password: config.dashboard.password } : undefined,
    }),
  );
  app.use(artifactLinkRouter({ db, log, requestTimeoutMs: config.taskcluster.requestTimeoutMs, taskcluster: config.taskcluster }));
  app.use(readApiRouter({ config, db, log, backends: options.backends ?? {} }));
  app.use((_request, response) => {
    response.status(404).json({ error: "not found" });
  });
  // Express 5 forwards rejected handlers here; answer without leaking details.
  // Client errors raised by Express itself keep their status: a malformed
  // percent-escape in a path parameter (URIError, 400), a body too large...
  app.use((error: Error & { status?: number; statusCode?: number }, request: express.Request, response: express.Response, _next: express.NextFunction) => {
    const status = error.status ?? error.statusCode;
    if (typeof status === "number" && status >= 400 && status < 500) {
      log.info({ err: redactText(error.message).slice(0, 300), status }, "bad request");
      if (!response.headersSent) response.status(status).json({ error: error instanceof URIError ? "malformed percent-encoding in the path" : "bad request" });
      return;
    }
    log.error({ err: error, path: request.path }, "request failed");
    if (!response.headersSent) response.status(500).json({ error: "internal error" });
  });

  const releaseConnections = async () => {
    await Promise.all([...brokers.values()].map((probe) => probe.close()));
    await closeQueues(queues).catch(() => {});
    await redis.quit().catch(() => redis.disconnect());
    if (!options.db) await db.$disconnect();
  };
  const listening = await listen(createServer(app), {
    role: "dashboard",
    host: config.dashboard.host,
    port: config.dashboard.port,
    log,
    lifecycle,
    release: releaseConnections,
  });
  log.info({ url: listening.url, readOnly: !config.dashboard.user }, "dashboard listening");
  return listening;
}
