// Loaded into a pulse-bridge process by the soak (NODE_OPTIONS=--import):
// every second, appends one JSON line with the process's RSS, heap and
// event-loop delay (since the previous line) to SOAK_PROBE_FILE. Plain JS so
// the built CLI can load it without tsx.
import { appendFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";

const file = process.env.SOAK_PROBE_FILE;
if (file) {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const timer = setInterval(() => {
    const memory = process.memoryUsage();
    const line = {
      t: Date.now(),
      pid: process.pid,
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      eldP50: delay.percentile(50) / 1e6,
      eldP99: delay.percentile(99) / 1e6,
      eldMax: delay.max / 1e6,
    };
    delay.reset();
    try {
      appendFileSync(file, `${JSON.stringify(line)}\n`);
    } catch {
      // The soak reads what it can; a lost sample is not worth disturbing the process.
    }
  }, 1000);
  timer.unref();
}
