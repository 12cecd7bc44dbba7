// Loaded into a pulse-bridge process by the soak (NODE_OPTIONS=--import):
// every second, appends one JSON line with the process's memory (RSS, and
// V8's heap against what lives outside it: external, array buffers), CPU
// time (ms) and event-loop delay (since the previous line) to SOAK_PROBE_FILE. Plain JS so
// the built CLI can load it without tsx.
//
// SIGUSR2 writes a heap snapshot next to the probe file (v8.writeHeapSnapshot;
// --heapsnapshot-signal and the inspector are not reachable on the soak's
// machines): `kill -USR2 <pid>`, then open the .heapsnapshot in DevTools.
//
// SOAK_PROBE_ALLOCATION_PROFILE=<seconds> (the soak passes it to the workers)
// samples allocations from the start, counting objects a major GC collected
// too: those outlived the young generation and made the old one grow, which is
// where a busy process's heap slack comes from. After that many seconds it
// writes a .heapprofile (DevTools' format) next to the probe file.
import { appendFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { writeHeapSnapshot } from "node:v8";

const file = process.env.SOAK_PROBE_FILE;
if (file) {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const timer = setInterval(() => {
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    const line = {
      t: Date.now(),
      pid: process.pid,
      rss: memory.rss,
      heapTotal: memory.heapTotal,
      heapUsed: memory.heapUsed,
      external: memory.external,
      arrayBuffers: memory.arrayBuffers,
      cpuUser: cpu.user / 1000,
      cpuSystem: cpu.system / 1000,
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
  process.on("SIGUSR2", () => {
    const written = writeHeapSnapshot(`${file.replace(/\.probe\.jsonl$/, "")}.${Date.now()}.heapsnapshot`);
    try {
      appendFileSync(file, `${JSON.stringify({ t: Date.now(), pid: process.pid, heapSnapshot: written })}\n`);
    } catch {}
  });

  const profileAfterS = Number(process.env.SOAK_PROBE_ALLOCATION_PROFILE ?? 0);
  if (profileAfterS > 0) {
    const session = new Session();
    session.connect();
    session.post("HeapProfiler.startSampling", { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true });
    const profileTimer = setTimeout(() => {
      session.post("HeapProfiler.stopSampling", (error, result) => {
        if (!error) writeFileSync(`${file.replace(/\.probe\.jsonl$/, "")}.heapprofile`, JSON.stringify(result.profile));
        session.disconnect();
      });
    }, profileAfterS * 1000);
    profileTimer.unref();
  }
}
