-- CreateEnum
CREATE TYPE "PushSource" AS ENUM ('pushlog', 'pulse', 'webhook', 'poll');

-- AlterTable
ALTER TABLE "Push" ADD COLUMN     "source" "PushSource" NOT NULL DEFAULT 'pushlog';

-- Git pushes stored before this migration came from Pulse events (they carry an event id).
UPDATE "Push" SET "source" = 'pulse' WHERE "eventId" IS NOT NULL;
