/**
 * Bull Board at `/queues` for hg-sync, tc-ingest and dead-letter (PRODUCT §8).
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
 * Job data is passed through redactSecrets before it is rendered.
 */
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import { Router, type RequestHandler } from "express";
import { QUEUE_NAMES } from "../jobs/contracts.ts";
import type { Queues } from "../jobs/queues.ts";
import { requireBasicAuth } from "./basic-auth.ts";
import { redactSecrets } from "./redact-secrets.ts";

export const BOARD_PATH = "/queues";

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
  router.use(serverAdapter.getRouter() as Router);
  return router;
}
