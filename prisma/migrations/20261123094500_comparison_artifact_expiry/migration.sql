-- AlterTable
ALTER TABLE "Comparison" ADD COLUMN     "artifactExpiresAt" TIMESTAMP(3);
