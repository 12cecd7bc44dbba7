-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "RepositoryKind" AS ENUM ('hg', 'git');

-- CreateEnum
CREATE TYPE "FileAction" AS ENUM ('added', 'modified', 'removed');

-- CreateTable
CREATE TABLE "Forest" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "archived" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Forest_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Locale" (
    "id" SERIAL NOT NULL,
    "code" TEXT NOT NULL,

    CONSTRAINT "Locale_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Repository" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "kind" "RepositoryKind" NOT NULL,
    "forestId" INTEGER,
    "localeId" INTEGER,
    "archived" BOOLEAN NOT NULL DEFAULT false,
    "lastPushId" INTEGER NOT NULL DEFAULT 0,
    "lastSyncedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Repository_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RepositoryChangeset" (
    "repositoryId" INTEGER NOT NULL,
    "changesetId" INTEGER NOT NULL,

    CONSTRAINT "RepositoryChangeset_pkey" PRIMARY KEY ("repositoryId","changesetId")
);

-- CreateTable
CREATE TABLE "Push" (
    "id" SERIAL NOT NULL,
    "repositoryId" INTEGER NOT NULL,
    "pushId" INTEGER NOT NULL,
    "user" TEXT NOT NULL,
    "pushedAt" TIMESTAMP(3) NOT NULL,
    "eventId" TEXT,

    CONSTRAINT "Push_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PushChangeset" (
    "pushId" INTEGER NOT NULL,
    "position" INTEGER NOT NULL,
    "changesetId" INTEGER NOT NULL,

    CONSTRAINT "PushChangeset_pkey" PRIMARY KEY ("pushId","position")
);

-- CreateTable
CREATE TABLE "Changeset" (
    "id" SERIAL NOT NULL,
    "revision" CHAR(40) NOT NULL,
    "author" TEXT,
    "description" TEXT,
    "date" TIMESTAMP(3),
    "branchId" INTEGER,
    "placeholder" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "Changeset_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ChangesetParent" (
    "childId" INTEGER NOT NULL,
    "position" INTEGER NOT NULL,
    "parentId" INTEGER NOT NULL,

    CONSTRAINT "ChangesetParent_pkey" PRIMARY KEY ("childId","position")
);

-- CreateTable
CREATE TABLE "File" (
    "id" SERIAL NOT NULL,
    "path" TEXT NOT NULL,

    CONSTRAINT "File_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ChangesetFile" (
    "changesetId" INTEGER NOT NULL,
    "fileId" INTEGER NOT NULL,
    "action" "FileAction" NOT NULL,

    CONSTRAINT "ChangesetFile_pkey" PRIMARY KEY ("changesetId","fileId")
);

-- CreateTable
CREATE TABLE "Branch" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,

    CONSTRAINT "Branch_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SyncRun" (
    "id" SERIAL NOT NULL,
    "repositoryId" INTEGER NOT NULL,
    "jobId" TEXT NOT NULL,
    "worker" TEXT NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL,
    "finishedAt" TIMESTAMP(3),
    "outcome" TEXT,
    "pushesStored" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "SyncRun_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Build" (
    "id" SERIAL NOT NULL,
    "rootUrl" TEXT NOT NULL,
    "taskId" TEXT NOT NULL,
    "runId" INTEGER NOT NULL,
    "state" TEXT NOT NULL,
    "taskGroupId" TEXT,
    "resolvedAt" TIMESTAMP(3),
    "source" TEXT,
    "repository" TEXT,
    "compareLocalesVersion" TEXT,
    "hasElmoJson" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Build_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Comparison" (
    "id" SERIAL NOT NULL,
    "buildId" INTEGER NOT NULL,
    "localeId" INTEGER NOT NULL,
    "config" TEXT NOT NULL,
    "errors" INTEGER NOT NULL,
    "warnings" INTEGER NOT NULL,
    "missing" INTEGER NOT NULL,
    "missingW" INTEGER NOT NULL,
    "report" INTEGER NOT NULL,
    "obsolete" INTEGER NOT NULL,
    "changed" INTEGER NOT NULL,
    "changedW" INTEGER NOT NULL,
    "unchanged" INTEGER NOT NULL,
    "unchangedW" INTEGER NOT NULL,
    "keys" INTEGER NOT NULL,
    "completion" DOUBLE PRECISION NOT NULL,
    "artifactName" TEXT NOT NULL,
    "artifactUrl" TEXT NOT NULL,
    "resolvedUrl" TEXT,
    "resolvedExpiresAt" TIMESTAMP(3),

    CONSTRAINT "Comparison_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ComparisonRevision" (
    "comparisonId" INTEGER NOT NULL,
    "repository" TEXT NOT NULL,
    "changesetId" INTEGER NOT NULL,

    CONSTRAINT "ComparisonRevision_pkey" PRIMARY KEY ("comparisonId","repository")
);

-- CreateTable
CREATE TABLE "JobRecord" (
    "id" SERIAL NOT NULL,
    "queue" TEXT NOT NULL,
    "jobId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL,
    "error" TEXT,
    "enqueuedAt" TIMESTAMP(3),
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    "durationMs" INTEGER,
    "recordedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "JobRecord_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Forest_name_key" ON "Forest"("name");

-- CreateIndex
CREATE UNIQUE INDEX "Locale_code_key" ON "Locale"("code");

-- CreateIndex
CREATE UNIQUE INDEX "Repository_name_key" ON "Repository"("name");

-- CreateIndex
CREATE UNIQUE INDEX "Repository_url_key" ON "Repository"("url");

-- CreateIndex
CREATE INDEX "RepositoryChangeset_changesetId_idx" ON "RepositoryChangeset"("changesetId");

-- CreateIndex
CREATE UNIQUE INDEX "Push_repositoryId_pushId_key" ON "Push"("repositoryId", "pushId");

-- CreateIndex
CREATE UNIQUE INDEX "Push_repositoryId_eventId_key" ON "Push"("repositoryId", "eventId");

-- CreateIndex
CREATE INDEX "PushChangeset_changesetId_idx" ON "PushChangeset"("changesetId");

-- CreateIndex
CREATE UNIQUE INDEX "Changeset_revision_key" ON "Changeset"("revision");

-- CreateIndex
CREATE INDEX "ChangesetParent_parentId_idx" ON "ChangesetParent"("parentId");

-- CreateIndex
CREATE UNIQUE INDEX "File_path_key" ON "File"("path");

-- CreateIndex
CREATE INDEX "ChangesetFile_fileId_idx" ON "ChangesetFile"("fileId");

-- CreateIndex
CREATE UNIQUE INDEX "Branch_name_key" ON "Branch"("name");

-- CreateIndex
CREATE INDEX "SyncRun_repositoryId_startedAt_idx" ON "SyncRun"("repositoryId", "startedAt");

-- CreateIndex
CREATE UNIQUE INDEX "Build_rootUrl_taskId_runId_key" ON "Build"("rootUrl", "taskId", "runId");

-- CreateIndex
CREATE INDEX "Comparison_localeId_idx" ON "Comparison"("localeId");

-- CreateIndex
CREATE UNIQUE INDEX "Comparison_buildId_localeId_config_key" ON "Comparison"("buildId", "localeId", "config");

-- CreateIndex
CREATE INDEX "ComparisonRevision_changesetId_idx" ON "ComparisonRevision"("changesetId");

-- CreateIndex
CREATE INDEX "JobRecord_queue_state_finishedAt_idx" ON "JobRecord"("queue", "state", "finishedAt");

-- CreateIndex
CREATE UNIQUE INDEX "JobRecord_queue_jobId_attempts_state_key" ON "JobRecord"("queue", "jobId", "attempts", "state");

-- AddForeignKey
ALTER TABLE "Repository" ADD CONSTRAINT "Repository_forestId_fkey" FOREIGN KEY ("forestId") REFERENCES "Forest"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Repository" ADD CONSTRAINT "Repository_localeId_fkey" FOREIGN KEY ("localeId") REFERENCES "Locale"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RepositoryChangeset" ADD CONSTRAINT "RepositoryChangeset_repositoryId_fkey" FOREIGN KEY ("repositoryId") REFERENCES "Repository"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RepositoryChangeset" ADD CONSTRAINT "RepositoryChangeset_changesetId_fkey" FOREIGN KEY ("changesetId") REFERENCES "Changeset"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Push" ADD CONSTRAINT "Push_repositoryId_fkey" FOREIGN KEY ("repositoryId") REFERENCES "Repository"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PushChangeset" ADD CONSTRAINT "PushChangeset_pushId_fkey" FOREIGN KEY ("pushId") REFERENCES "Push"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PushChangeset" ADD CONSTRAINT "PushChangeset_changesetId_fkey" FOREIGN KEY ("changesetId") REFERENCES "Changeset"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Changeset" ADD CONSTRAINT "Changeset_branchId_fkey" FOREIGN KEY ("branchId") REFERENCES "Branch"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ChangesetParent" ADD CONSTRAINT "ChangesetParent_childId_fkey" FOREIGN KEY ("childId") REFERENCES "Changeset"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ChangesetParent" ADD CONSTRAINT "ChangesetParent_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Changeset"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ChangesetFile" ADD CONSTRAINT "ChangesetFile_changesetId_fkey" FOREIGN KEY ("changesetId") REFERENCES "Changeset"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ChangesetFile" ADD CONSTRAINT "ChangesetFile_fileId_fkey" FOREIGN KEY ("fileId") REFERENCES "File"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SyncRun" ADD CONSTRAINT "SyncRun_repositoryId_fkey" FOREIGN KEY ("repositoryId") REFERENCES "Repository"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Comparison" ADD CONSTRAINT "Comparison_buildId_fkey" FOREIGN KEY ("buildId") REFERENCES "Build"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Comparison" ADD CONSTRAINT "Comparison_localeId_fkey" FOREIGN KEY ("localeId") REFERENCES "Locale"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ComparisonRevision" ADD CONSTRAINT "ComparisonRevision_comparisonId_fkey" FOREIGN KEY ("comparisonId") REFERENCES "Comparison"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ComparisonRevision" ADD CONSTRAINT "ComparisonRevision_changesetId_fkey" FOREIGN KEY ("changesetId") REFERENCES "Changeset"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
