/**
 * What the big-stack reader keeps of a message's headers: everything a real
 * Pulse message carries, and nothing that recursive code (structured clone,
 * JSON, BullMQ) on a normal stack could choke on.
 */
import { expect, it } from "vitest";
import { DROPPED_HEADERS_NOTE, MAX_HEADER_BYTES, shallowHeaders } from "../../src/pulse/shallow-headers.ts";

it("keeps ordinary headers (CC routes, x-death) as they are", () => {
  const headers = {
    CC: ["route.project.l10n.elmo.v1", "route.index.x"],
    "x-death": [{ count: 1, reason: "delivery_limit", queue: "queue/u/q/v2/taskcluster", "routing-keys": ["primary.x"], time: { "!": "timestamp", value: 1 } }],
    "x-delivery-count": 3,
    bytes: Buffer.from("abc"),
  };
  expect(shallowHeaders(headers)).toEqual({ headers, dropped: [] });
  expect(shallowHeaders(undefined)).toEqual({ headers: {}, dropped: [] });
});

it("drops values nested too deep or too large, names them in a note, and never recurses", () => {
  let deep: Record<string, unknown> = {};
  for (let i = 0; i < 200_000; i++) deep = { a: deep };
  const { headers, dropped } = shallowHeaders({ CC: ["route.x"], deep, big: "x".repeat(MAX_HEADER_BYTES + 1), list: [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]] });
  expect(dropped).toEqual(["deep (nested deeper than 16 levels)", `big (larger than ${MAX_HEADER_BYTES} bytes)`, "list (nested deeper than 16 levels)"]);
  expect(headers).toEqual({ CC: ["route.x"], [DROPPED_HEADERS_NOTE]: `dropped by pulse-bridge: ${dropped.join(", ")}` });
  // What is kept survives JSON, as BullMQ stores it.
  expect(JSON.parse(JSON.stringify(headers))).toEqual(headers);
});
