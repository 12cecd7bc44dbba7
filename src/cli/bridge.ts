import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { runRole } from "./role.ts";

export function registerBridge(program: Command, context: CliContext): void {
  program
    .command("bridge")
    .description("consume the Pulse queues and turn each message into a BullMQ job (acked once Redis has it)")
    .action(async () => {
      await runRole(await context.config(), "bridge", async ({ config, log, lifecycle }) => {
        const { startBridge } = await import("../bridge/bridge.ts");
        await startBridge({ config, log, lifecycle });
      });
    });
}
