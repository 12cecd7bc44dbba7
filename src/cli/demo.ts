import { type Command, InvalidArgumentError } from "commander";
import { requireTools } from "../core/prerequisites.ts";

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("must be a number of seconds");
  return n * 1000;
}

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      "a self-contained tour on the local services: local hg/git upstreams and Taskcluster stand-in, real messages on the local broker, then a summary of what was stored",
    )
    .option("--serve", "keep the dashboard (and everything else) running after the summary, until Ctrl-C")
    .option("--timeout <seconds>", "how long to wait for the jobs (default: 90)", seconds)
    .action(async (options: { serve?: boolean; timeout?: number }) => {
      requireTools(["hg", "git"], "demo");
      const { runDemo } = await import("../demo/run-demo.ts");
      const summary = await runDemo({
        env: process.env,
        serve: Boolean(options.serve),
        timeoutMs: options.timeout ?? 90_000,
        print: (line) => console.log(line),
      });
      if (summary.repositories === 0 || summary.changesets === 0 || summary.comparisons === 0) {
        throw new Error("the demo stored less than expected: see the summary above and the logs (LOG_LEVEL=info)");
      }
    });
}
