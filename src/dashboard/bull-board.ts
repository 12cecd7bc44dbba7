/**
 * Bull Board at `/queues` for hg-sync, tc-ingest and dead-letter (README, Operations).
 *
 * Access policy:
 * - DASHBOARD_USER/DASHBOARD_PASSWORD set: the whole board (its pages and its
 *   JSON API, reads included, since job data holds the original messages)
 *   requires HTTP basic auth, and write actions (retry, clean, promote,
 *   remove, pause) are enabled.
 * - unset: the board is open for reading and read-only. Every queue adapter
 *   is in Bull Board's `readOnlyMode` (its write routes answer 405), and a
 *   guard in front refuses any non-GET request with 405 as well, so a write
 *   route Bull Board forgets to check cannot slip through. Hiding the buttons
 *   alone would not be protection.
 * Job data is passed through redactSecrets before it is rendered, and every
 * JSON answer of the board's API (failure reasons, stack traces, job logs,
 * error messages) has credentials in URLs masked.
 *
 * Page sizes are capped: Bull Board takes `jobsPerPage` from the query as is,
 * and one read-only request for 100,000 jobs per page returned every job with
 * its data (13.4 MB measured) — a cheap way to load Redis and the process.
 */
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import { type RequestHandler, Router } from "express";
import { QUEUE_NAMES } from "../contract/contracts.ts";
import type { Queues } from "../contract/queues.ts";
import { requireBasicAuth } from "./basic-auth.ts";
import { redactSecrets, redactUrlsDeep } from "./redact-secrets.ts";

export const BOARD_PATH = "/queues";
/** Most jobs one board request may list (the UI asks for 10 by default). */
export const MAX_JOBS_PER_PAGE = 100;

const DESCRIPTIONS: Record<(typeof QUEUE_NAMES)[number], string> = {
  "hg-sync": "clone syncs: hg and GitHub pushes, new repositories, reconciles",
  "tc-ingest": "Taskcluster compare-locales runs to Builds and Comparisons",
  "dead-letter": "messages that could not become jobs; replay with `pulse-bridge replay --dead-letter`",
};

export interface BoardAccess {
  credentials: { user: string; password: string } | undefined;
}

const refuseWrites: RequestHandler = (request, response, next) => {
  if (request.method === "GET" || request.method === "HEAD") return next();
  response.status(405).json({ error: "the dashboard is read-only: set DASHBOARD_USER and DASHBOARD_PASSWORD to enable actions" });
};

/** Rewrites `jobsPerPage` above the cap in the URL itself: Express 5 parses `req.query` from it on each read. */
const capPageSize: RequestHandler = (request, _response, next) => {
  const query = request.url.indexOf("?");
  // Parsed, not searched for: a percent-encoded key (jobs%50erPage) means the same to Express.
  if (query === -1) return next();
  const params = new URLSearchParams(request.url.slice(query + 1));
  const asked = params.getAll("jobsPerPage");
  // Repeated (?jobsPerPage=10&jobsPerPage=100000) counts as too large.
  if (asked.length > 1 || (asked.length === 1 && !(/^\d{1,3}$/.test(asked[0]!) && Number(asked[0]) <= MAX_JOBS_PER_PAGE))) {
    params.set("jobsPerPage", String(MAX_JOBS_PER_PAGE));
    request.url = `${request.url.slice(0, query)}?${params.toString()}`;
  }
  next();
};

/** Masks URL credentials in every JSON answer of the board's API (reasons, stack traces, logs, errors). */
const redactAnswers: RequestHandler = (request, response, next) => {
  if (!request.path.startsWith("/api/")) return next();
  const json = response.json.bind(response);
  response.json = (body: unknown) => json(redactUrlsDeep(body));
  next();
};

export function bullBoardRouter(queues: Queues, access: BoardAccess): Router {
  const readOnlyMode = access.credentials === undefined;
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: QUEUE_NAMES.map((name) => {
      const adapter = new BullMQAdapter(queues[name], { readOnlyMode, allowRetries: !readOnlyMode, description: DESCRIPTIONS[name] });
      adapter.setFormatter("data", (data: unknown) => redactSecrets(data));
      adapter.setFormatter("returnValue", (value: unknown) => redactSecrets(value));
      return adapter;
    }),
    serverAdapter,
    options: { uiConfig: { boardTitle: "pulse-bridge" } },
  });
  const router = Router();
  router.use(access.credentials ? requireBasicAuth(access.credentials.user, access.credentials.password) : refuseWrites);
  router.use(capPageSize, redactAnswers);
  router.use(serverAdapter.getRouter() as Router);
  return router;
}
