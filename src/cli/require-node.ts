/**
 * Imported first by src/cli.ts, so it runs before any other module of the
 * command: on a Node older than the project supports, say so and how to get
 * a supported one, rather than fail later on something Node lacks.
 */
import { nodeVersionProblem } from "../core/prerequisites.ts";

const problem = nodeVersionProblem(process.versions.node);
if (problem !== undefined) {
  process.stderr.write(`pulse-bridge: ${problem}\n`);
  process.exit(1);
}
